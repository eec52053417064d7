"""Regenerates docs/status-page.png: the HTTP port's status page during a live localnet.

    .venv/bin/python tools/screenshot_status.py [--out docs/status-page.png] [--seconds 40]

Starts a 4-validator localnet on free loopback ports in a temporary directory with the
demo traders of ``make run`` (a market maker's ladders, four takers, a leveraged trader),
lets them trade for ``--seconds``, then opens node0's ``/`` in Debian's headless chromium
(``apt-get install chromium chromium-driver``; selenium from the dev extras) and saves the
whole page. Everything is stopped at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "status-page.png")
    parser.add_argument("--seconds", type=float, default=40, help="trading before the shot")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    driver_path = shutil.which("chromedriver")
    if driver_path is None or not Path("/usr/bin/chromium").exists():
        print("needs Debian's chromium: apt-get install chromium chromium-driver", file=sys.stderr)
        return 2
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from appchaind.localnet.processes import Localnet
    from appchaind.localnet.traders import DemoTraders

    with tempfile.TemporaryDirectory(prefix="status-shot-") as tmp:
        net = Localnet(Path(tmp) / "net", validators=4, spare_nodes=0, chain_id="demo-net")
        net.start_all()
        demo = DemoTraders(Path(tmp) / "net" / "accounts",
                           [f"127.0.0.1:{n.rpc_port}" for n in net.nodes], seed=18)  # fmt: skip
        driver = None
        try:
            net.wait_height(list(range(4)), 2)
            demo.start()
            print(f"trading for {args.seconds:g} s ...", flush=True)
            time.sleep(args.seconds)
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                        "--disable-gpu", "--hide-scrollbars"):  # fmt: skip
                options.add_argument(arg)
            driver = webdriver.Chrome(service=Service(driver_path), options=options)
            driver.set_window_size(args.width, 900)
            driver.get(f"http://127.0.0.1:{net.http_ports[0]}/")
            wait = WebDriverWait(driver, 60, poll_frequency=0.2)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#trades tr[data-tx]"))
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#depth path"))
            time.sleep(1.5)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd(  # the whole page in one viewport
                "Emulation.setDeviceMetricsOverride",
                {"width": args.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            time.sleep(1.0)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
            print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
        finally:
            if driver is not None:
                driver.quit()
            demo.stop()
            net.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
