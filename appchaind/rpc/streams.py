"""The RPC port's streams: subscriptions, and the commit feed that fans out their items.

Topics are (stream, key): ``("blocks", "")``, ``("trades", symbol)``, ``("book",
symbol)``, ``("account", address hex)``. After each commit :meth:`StreamHub.publish_block`
computes each topic's item once and queues its frame to every subscriber with
``send_nowait`` on the connection's bounded outbox. A subscriber whose outbox is full is
dropped (a DROP frame, then its connection closes): nothing on the commit path ever
waits for a client. The book stream carries changed levels with a ``seq`` that grows by
one per item; :meth:`StreamHub.book_snapshot` is what a subscriber applies them to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from appchaind.abci import FinalizeResult
from appchaind.chain import types
from appchaind.rpc import params as params_
from appchaind.rpc import views
from appchaind.rpc.protocol import STREAM, ErrorCode, RpcError, frame, pack
from appchaind.telemetry.logs import get_logger

if TYPE_CHECKING:
    from appchaind.exchange.app import ExchangeApp

__all__ = ["BOOK_DEPTH", "STREAMS", "Connection", "StreamHub"]

log = get_logger("rpc")

#: Levels per side the book stream tracks (and the deepest ``book`` answer).
BOOK_DEPTH = 100
STREAMS = ("blocks", "trades", "book", "account")
_ADDRESS_KEYS = ("owner", "maker", "taker", "account", "counterparty", "sender", "recipient")


@dataclass(eq=False)
class Connection:
    """One RPC connection: its peer, its outbox (the writer task sends what is queued),
    its subscriptions and its request-rate bucket."""

    peer: str
    outbox: trio.MemorySendChannel[bytes]
    subscriptions: dict[int, tuple[str, str]] = field(default_factory=dict)
    next_subscription: int = 1
    drop_reason: str | None = None
    tokens: float = 0.0
    refilled: float = 0.0


class StreamHub:
    """The subscriptions of every connection of one RPC server, and their feed."""

    def __init__(
        self, exchange: ExchangeApp | None, *, max_subscriptions: int, queue_messages: int
    ) -> None:
        self.exchange = exchange
        self.max_subscriptions = max_subscriptions
        self.queue_messages = queue_messages
        self.dropped_subscribers = 0
        #: topic -> {(connection, subscription id): None}
        self._topics: dict[tuple[str, str], dict[tuple[Connection, int], None]] = {}
        self._markets = [] if exchange is None else [m.params for m in exchange.markets]
        #: Per market: (seq, height, bids, asks) of the last published top of book.
        self._books: list[tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]]] = []
        if exchange is not None:
            for market_id in range(len(self._markets)):
                bids, asks = views.book_levels(exchange, market_id, BOOK_DEPTH)
                self._books.append((0, exchange.height, bids, asks))

    @property
    def subscriptions(self) -> int:
        return sum(len(s) for s in self._topics.values())

    def subscribe(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        stream = params.get("stream")
        if stream not in STREAMS:
            raise RpcError(
                ErrorCode.BAD_PARAMS,
                f"stream must be one of {', '.join(STREAMS)}; got {stream!r:.60}",
            )
        if len(conn.subscriptions) >= self.max_subscriptions:
            raise RpcError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"this connection already has {len(conn.subscriptions)} subscriptions "
                f"(limit {self.max_subscriptions}); unsubscribe or open another connection",
            )
        reply: dict[str, Any] = {}
        if stream == "blocks":
            key = ""
        elif stream == "account":
            key = params_.address(params).hex()
        else:
            if self.exchange is None:
                raise RpcError(ErrorCode.UNAVAILABLE, "this node does not run the exchange")
            market_id = params_.market_id(params, self._markets)
            key = self._markets[market_id].symbol
            if stream == "book":
                reply["snapshot"] = self.book_snapshot(market_id)
        sub_id = conn.next_subscription
        conn.next_subscription += 1
        topic = (stream, key)
        conn.subscriptions[sub_id] = topic
        self._topics.setdefault(topic, {})[(conn, sub_id)] = None
        return {"subscription": sub_id, "stream": stream, **reply}

    def unsubscribe(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any]:
        sub_id = params.get("subscription")
        topic = conn.subscriptions.pop(sub_id, None) if type(sub_id) is int else None
        if topic is None:
            raise RpcError(
                ErrorCode.NOT_FOUND, f"no subscription {sub_id!r:.60} on this connection"
            )
        subscribers = self._topics.get(topic)
        if subscribers is not None:
            subscribers.pop((conn, sub_id), None)
            if not subscribers:
                del self._topics[topic]
        return {}

    def _publish(self, topic: tuple[str, str], item: dict[str, Any]) -> None:
        subscribers = self._topics.get(topic)
        if not subscribers:
            return
        body = pack(topic[0]) + pack(item)
        for conn, sub_id in list(subscribers):
            if conn.drop_reason is not None:
                continue
            payload = b"\x94" + pack(STREAM) + pack(sub_id) + body
            try:
                conn.outbox.send_nowait(frame(payload))
            except trio.WouldBlock:
                self._drop(conn, f"subscriber too slow: more than {self.queue_messages} "
                                 "messages queued; resubscribe and read faster")  # fmt: skip
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass

    def _drop(self, conn: Connection, reason: str) -> None:
        conn.drop_reason = reason
        self.dropped_subscribers += 1
        log.info("rpc_subscriber_dropped", peer=conn.peer, reason=reason)
        self.forget(conn)

    # ------------------------------------------------------------------ the commit feed

    def publish_block(
        self, block: types.Block, hashes: list[bytes], result: FinalizeResult
    ) -> None:
        """Publishes every stream's item for this committed block. Never waits."""
        height = block.header.height
        if ("blocks", "") in self._topics:
            item = views.block_summary(block, hashes, len(result.forced_txs))
            item["tx_codes"] = [o.code for o in result.tx_results]
            item["events"] = len(result.events) + sum(len(o.events) for o in result.tx_results)
            self._publish(("blocks", ""), item)
        exchange = self.exchange
        if exchange is None:
            return
        markets = self._markets
        fills: dict[str, list[dict[str, Any]]] = {}
        accounts: dict[str, list[dict[str, Any]]] = {}
        tagged = [
            (h.hex(), kind, attributes)
            for h, outcome in zip(hashes, result.tx_results, strict=True)
            for kind, attributes in outcome.events
        ]
        tagged += [(None, kind, attributes) for kind, attributes in result.events]
        # The markets whose trades someone follows (a fill's view is built only for them).
        traded = {
            market_id for market_id, p in enumerate(markets) if ("trades", p.symbol) in self._topics
        }
        for tx_hash, kind, attributes in tagged:
            wanted_trade = kind == "fill" and attributes.get("market") in traded
            owners = [
                owner for key in _ADDRESS_KEYS
                if isinstance(a := attributes.get(key), bytes)
                and ("account", owner := a.hex()) in self._topics
            ]  # fmt: skip
            if not wanted_trade and not owners:
                continue
            view = views.event_view(kind, attributes, markets)
            view["tx_hash"] = tx_hash
            if wanted_trade:
                fills.setdefault(view["market"], []).append(view)
            for owner in dict.fromkeys(owners):
                accounts.setdefault(owner, []).append(view)
        for symbol, trades in fills.items():
            self._publish(("trades", symbol), {"market": symbol, "height": height, "fills": trades})
        for owner, events in accounts.items():
            self._publish(
                ("account", owner), {"address": owner, "height": height, "events": events}
            )
        self._publish_books(exchange, height)

    def _publish_books(self, exchange: ExchangeApp, height: int) -> None:
        for market_id, (seq, _h, old_bids, old_asks) in enumerate(self._books):
            bids, asks = views.book_levels(exchange, market_id, BOOK_DEPTH)
            bid_changes = _level_changes(old_bids, bids)
            ask_changes = _level_changes(old_asks, asks)
            if not bid_changes and not ask_changes:
                self._books[market_id] = (seq, height, bids, asks)
                continue
            seq += 1
            self._books[market_id] = (seq, height, bids, asks)
            p = self._markets[market_id]
            topic = ("book", p.symbol)
            if topic in self._topics:
                self._publish(
                    topic,
                    {
                        "market": p.symbol, "seq": seq, "height": height,
                        "bids": views.levels_view(bid_changes, p),
                        "asks": views.levels_view(ask_changes, p),
                    },
                )  # fmt: skip

    def book_snapshot(self, market_id: int, depth: int = BOOK_DEPTH) -> dict[str, Any]:
        """The top ``depth`` levels as of the last commit, with the book stream's ``seq``."""
        p = self._markets[market_id]
        seq, height, bids, asks = self._books[market_id]
        return {
            "market": p.symbol,
            "seq": seq,
            "height": height,
            "bids": views.levels_view(bids[:depth], p),
            "asks": views.levels_view(asks[:depth], p),
        }

    def forget(self, conn: Connection) -> None:
        """Ends every subscription of ``conn`` (it closed, or was dropped)."""
        for sub_id, topic in conn.subscriptions.items():
            subscribers = self._topics.get(topic)
            if subscribers is not None:
                subscribers.pop((conn, sub_id), None)
                if not subscribers:
                    del self._topics[topic]
        conn.subscriptions.clear()


def _level_changes(old: list[tuple[int, int]], new: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(price, new size) for every level that changed; size 0 = the level is gone."""
    before = dict(old)
    after = dict(new)
    changes = [(price, size) for price, size in new if before.get(price) != size]
    changes += [(price, 0) for price in before if price not in after]
    return changes
