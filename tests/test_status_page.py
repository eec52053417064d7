"""The HTTP port's status page (``GET /``) in a real headless browser, and the endpoints
it polls (issue 18).

One 1-validator localnet serves the module. The browser test drives Debian's chromium
through its chromium-driver with selenium (a browser a package downloads cannot run on
the nodes' machines, so only the system's is used); it is skipped, saying what to
install, where they are missing. The endpoint tests need no browser.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from appchaind.chain.crypto import PrivateKey
from appchaind.client.library import SyncClient
from appchaind.localnet.processes import Localnet

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("APPCHAIND_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("APPCHAIND_CHROMEDRIVER") or shutil.which("chromedriver") or ""
#: Generous bounds of the browser waits (they poll; a healthy run takes a few seconds).
WAIT_S = 90


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    localnet = Localnet(tmp_path_factory.mktemp("status") / "net", validators=1, spare_nodes=0)
    localnet.start_all()
    try:
        localnet.wait_height([0], 2)
        yield localnet
    finally:
        localnet.close()


def url(net: Localnet, path: str) -> str:
    return f"http://{net.hosts[0]}:{net.http_ports[0]}{path}"


def http_get(net: Localnet, path: str) -> tuple[int, str, Any]:
    """(status, content type, body: JSON decoded, else text) of ``GET path``."""
    try:
        with urllib.request.urlopen(url(net, path), timeout=10) as r:
            status, ctype, raw = r.status, r.headers["content-type"], r.read()
    except urllib.error.HTTPError as exc:
        status, ctype, raw = exc.code, exc.headers["content-type"], exc.read()
    return status, ctype, json.loads(raw) if ctype.startswith("application/json") else raw.decode()


def rpc(net: Localnet) -> SyncClient:
    return SyncClient(f"127.0.0.1:{net.nodes[0].rpc_port}")


def key(net: Localnet, name: str) -> PrivateKey:
    return PrivateKey.load(net.dir / "accounts" / f"{name}.json")


def cross(net: Localnet, seller: str, buyer: str, market: str = "BTC-PERP") -> tuple[str, str]:
    """A resting sell of 0.02 at the oracle price and a buy of 0.01 at that price that takes
    0.01 (of it, or of an ask left lower by an earlier call): (the buy's tx hash, the fill's
    price)."""
    client = rpc(net)
    m = client.market(market)
    tick = Decimal(m["tick_size"])
    price = format(Decimal(m["oracle_price"]).quantize(tick).normalize(), "f")
    sold = client.place_order(key(net, seller), market, "sell", "0.02", price=price)
    assert sold.ok, sold.log
    bought = client.place_order(key(net, buyer), market, "buy", "0.01", price=price)
    assert bought.ok and len(bought.fills) == 1, bought
    return bought.tx_hash, bought.fills[0]["price"]


# ---------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or not CHROMEDRIVER or not Path(CHROMEDRIVER).exists():
        pytest.skip(
            "the status page's browser test needs Debian's chromium and its driver: "
            "apt-get install chromium chromium-driver"
        )
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is missing: pip install -e '.[dev]'"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver's path is given, so selenium never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def row_cells(driver: Any, selector: str) -> list[list[str]]:
    """The cells' text of the table rows ``selector`` matches, read in one script (the page
    replaces its rows every second: an element found first and read later may be gone)."""
    cells: list[list[str]] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])]"
        ".map((tr) => [...tr.cells].map((td) => td.textContent))",
        selector,
    )
    return cells


def test_status_page_in_a_browser(browser: Any, net: Localnet) -> None:
    # First in the module: the chain has no trade yet and every book is empty.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.2)
    browser.get(url(net, "/"))

    def text(d: Any, element_id: str) -> str:
        return str(d.find_element(By.ID, element_id).text)

    def shown_height(d: Any) -> int | None:
        shown = text(d, "height")
        return int(shown) if shown.isdigit() else None

    first = wait.until(shown_height)
    assert text(browser, "chain-id") == net.chain_id
    if not net.get(0, "/trades")["trades"]:
        wait.until(lambda d: "no trades yet" in text(d, "trades"))
        wait.until(lambda d: "the book is empty" in text(d, "depth"))
    wait.until(lambda d: (shown_height(d) or 0) > first)  # the page follows the chain
    wait.until(lambda d: text(d, "live") == "live")
    assert console_errors(browser) == []
    # The validator with its last signed height; the markets with their oracle prices.
    (validator,) = row_cells(browser, "#validators tbody tr")
    assert validator[0].endswith("(this node)") and validator[2].isdigit(), validator
    markets = row_cells(browser, "#markets tbody tr")
    assert [m[0] for m in markets] == ["BTC-PERP", "ETH-PERP"]
    assert all(Decimal(m[1]) > 0 for m in markets), markets

    tx_hash, price = cross(net, "alice", "bob")
    (cells,) = wait.until(lambda d: row_cells(d, f'#trades tr[data-tx="{tx_hash}"]'))
    _time, market, side, shown_price, size, height = cells[:6]
    assert (market, side, size) == ("BTC-PERP", "buy", "0.01"), cells
    assert Decimal(shown_price) == Decimal(price) and int(height) >= first
    # The resting half draws the ask side of the depth chart.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#depth path"))
    assert console_errors(browser) == []
    # A click picks the market of the chart: ETH's book is empty.
    browser.execute_script(
        "[...document.querySelectorAll('#markets tbody tr')]"
        ".find((tr) => tr.cells[0].textContent === 'ETH-PERP').click()"
    )
    wait.until(lambda d: text(d, "depth-market") == "ETH-PERP")
    wait.until(lambda d: "the book is empty" in text(d, "depth"))
    assert console_errors(browser) == []


# ---------------------------------------------------------------------------- endpoints


def test_page_is_one_self_contained_html_file(net: Localnet) -> None:
    status, ctype, text = http_get(net, "/")
    assert status == 200 and ctype == "text/html; charset=utf-8"
    assert "<svg" in text and "/trades" in text and "/liquidations" in text
    # No external assets: every URL the page names is one of the port's own paths.
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "src=" not in text


def test_validators_report_the_last_signed_height(net: Localnet) -> None:
    before = net.get(0, "/validators")
    (v,) = before["validators"]
    assert v["last_signed_height"] is not None and v["last_signed_height"] >= 1
    assert v["last_signed_height"] <= before["height"]
    net.wait_height([0], before["height"] + 2)
    (after,) = net.get(0, "/validators")["validators"]
    assert after["last_signed_height"] > v["last_signed_height"]
    assert net.get(0, "/status")["block_time_ms"] > 0


def test_trades_and_liquidations_endpoints(net: Localnet) -> None:
    tx_hash, price = cross(net, "trader0", "trader1")
    status, _, doc = http_get(net, "/trades/BTC-PERP?limit=5")
    assert status == 200 and doc["market"] == "BTC-PERP"
    trade = next(t for t in doc["trades"] if t["tx_hash"] == tx_hash)
    assert trade["kind"] == "fill" and trade["market"] == "BTC-PERP"
    assert Decimal(trade["price"]) == Decimal(price) and trade["size"] == "0.01"
    assert trade["taker_side"] == "buy" and trade["height"] >= 1 and trade["time_ms"] > 0
    assert len(doc["trades"]) <= 5
    # Every market's, newest first; the RPC method answers the same.
    _, _, every = http_get(net, "/trades")
    assert every["market"] is None and tx_hash in [t["tx_hash"] for t in every["trades"]]
    heights = [t["height"] for t in every["trades"]]
    assert heights == sorted(heights, reverse=True)
    assert tx_hash in [t["tx_hash"] for t in rpc(net).trades("BTC-PERP", 5)]
    status, _, doc = http_get(net, "/liquidations")
    assert status == 200 and doc["liquidations"] == [] and doc["height"] >= 1
    assert rpc(net).liquidations() == []


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/trades/NOPE-PERP", 400, "unknown market 'NOPE-PERP'"),
        ("/trades/BTC-PERP?limit=0", 400, "limit must be an int from 1 to 50"),
        ("/trades/BTC-PERP?limit=x", 400, "limit must be a decimal integer from 0 to"),
        ("/trades/BTC-PERP/x", 400, "use /trades/{market}"),
        ("/liquidations?limit=21", 400, "limit must be an int from 1 to 20"),
    ],
)
def test_bad_requests_say_what_was_wrong(net: Localnet, path: str, status: int, says: str) -> None:
    got, _, doc = http_get(net, path)
    assert got == status and says in doc["error"]["message"], doc
