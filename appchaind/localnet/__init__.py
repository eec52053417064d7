"""Local networks of validators on loopback: what ``make run``, the multi-process tests
and the benchmarks share.

- :mod:`~appchaind.localnet.homes`: ``localnet init``: node homes, one genesis with the
  demo markets, funded accounts.
- :mod:`~appchaind.localnet.processes`: a process manager for the nodes (start, kill,
  stop, wait for heights, read status and metrics, submit txs).
- :mod:`~appchaind.localnet.traders`: the demo traders (a market maker, takers, a
  leveraged trader).
- :mod:`~appchaind.localnet.live`: ``localnet start``: the nodes, the traders and the
  live view.
- :mod:`~appchaind.localnet.load`: ``bench load``: offered order flow measured from the
  commit stream; its sender processes are :mod:`~appchaind.localnet.load_senders`, its
  figures :mod:`~appchaind.localnet.load_report`.
"""
