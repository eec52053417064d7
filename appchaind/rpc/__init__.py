"""The traders' RPC port: length-prefixed msgpack requests, responses and streams.

Wire format (one TCP connection carries requests, their responses and pushed stream
items, interleaved):

* **Frame**: a 4-byte big-endian length, then that many bytes of msgpack. The server
  refuses a request frame longer than ``[rpc] max_message_bytes`` (an error frame naming
  the limit, then the connection closes: the stream cannot be resynchronised).
* **Request** ``[0, id, method, params]``: ``id`` an unsigned int the client chooses
  (echoed back), ``method`` a string, ``params`` a map with string keys.
* **Response** ``[1, id, error, result]``: exactly one of ``error`` / ``result`` is nil.
  ``error`` is ``{"code": int, "message": str}`` (codes in :class:`ErrorCode`). A frame
  the server could not attribute to a request (garbage, oversized) gets ``id`` nil.
* **Stream item** ``[2, subscription, stream, item]``: ``subscription`` is the id the
  ``subscribe`` call returned, ``stream`` its kind, ``item`` a map.
* **Drop** ``[3, subscription, reason]``: the server ended a subscription (a subscriber
  more than ``[rpc] subscriber_queue_messages`` behind is dropped; the connection closes
  after this frame, so a slow reader never slows block production).

Methods (params -> result; prices, sizes and amounts are decimal strings, ids ints):

``status``                    {} -> chain id, node id, height, block hash, app hash, peers
``broadcast_tx``              {"tx": bytes, "mode": "sync"|"commit", "timeout_s"?: float} ->
                              {"tx_hash", "code", "log"} (sync: the mempool's ``check_tx``
                              verdict) plus, for commit, {"height", "index", "fills",
                              "events"} once the tx is in a committed block
``account``                   {"address": hex} -> balance, positions (entry price,
                              unrealised PnL), open orders, free collateral, margin ratio
``book``                      {"market": symbol, "depth"?: int} -> bids, asks, seq, height
``markets``                   {} -> [{market, tick_size, lot_size, oracle_price,
                              funding_rate, open_interest, ...}]
``builders``                  {} -> height, [{address, public_key, name, bond, unbonding:
                              [{release_height, amount}], bids_won, paid}] by address
``validators``                {} -> height, total_power, [{operator, consensus_address,
                              public_key, moniker, details, commission, stake, self_bond,
                              power}], most powerful first (power 0: outside the set)
``delegations``               {"address": hex} -> [{validator, moniker, shares, value,
                              rewards}], unbonding [{validator, release_height, amount}],
                              commission (owed to it as an operator)
``tx``                        {"hash": hex} -> height, index, code, log, fills, events
``block``                     {"height": int} -> the block (header, tx hashes, results)
``trades``                    {"market"?: symbol, "limit"?: int <= 50} -> {"market",
                              "height", "trades": [fill events with "height", "time_ms",
                              "tx_hash"]}: the last fills the node committed (per market,
                              or of every market without ``market``), newest first
``liquidations``              {"limit"?: int <= 20} -> {"height", "liquidations": [...]}:
                              the last liquidation events, newest first (both kept since
                              the node started: :mod:`appchaind.rpc.recent`)
``subscribe``                 {"stream": "blocks"|"trades"|"book"|"account",
                              "market"?: symbol, "address"?: hex} -> {"subscription": id}
                              (``book`` answers with a snapshot to apply deltas to)
``unsubscribe``               {"subscription": id} -> {}

Streams: ``blocks`` (one item per committed block), ``trades`` (per market: the fills of
each block), ``book`` (per market: {"seq", "height", "bids", "asks"} with changed levels,
size "0" = level removed; ``seq`` grows by one per item, so a gap means resync with
``book``), ``account`` (per address: fills, order status changes, liquidations, funding
payments, transfers).

Limits per connection: ``requests_per_second`` (token bucket; over it a request gets
error ``RATE_LIMITED``), ``max_message_bytes``, ``max_subscriptions``, and
``request_timeout_ms`` to send the rest of a request once its first byte came (else error
``TIMEOUT`` and the connection closes); at most ``max_connections`` connections per node
and ``max_connections_per_host`` from one IP address (one more gets error
``UNAVAILABLE`` and is closed).
"""

from appchaind.rpc.protocol import ErrorCode, FrameDecoder, ProtocolError, RpcError

__all__ = ["ErrorCode", "FrameDecoder", "ProtocolError", "RpcError"]
