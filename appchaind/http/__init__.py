"""The node's HTTP port: JSON status, blocks and the exchange's views, and ``/metrics``.

:mod:`appchaind.http.server` is a small HTTP/1.1 server (parsing by h11);
:mod:`appchaind.http.routes` maps the endpoints onto a node's read-only view.
"""
