"""A headless chromium driven by selenium: how the explain page is tested and photographed.

Needs Debian's ``chromium`` and ``chromium-driver`` (apt) and ``selenium`` (the test
extra); neither is a run-time dependency of minimrcnn.

    driver = chromium_driver()
    driver.get("file:///abs/path/explain.html")
"""

from __future__ import annotations

import shutil
import tempfile

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def browser_missing() -> str | None:
    """Why no headless chromium can start here (a sentence), or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for name in ("chromium", "chromedriver"):
        if not shutil.which(name):
            return f"{name} is not installed (apt-get install chromium chromium-driver)"
    return None


def chromium_driver(width: int = 1400, height: int = 3000, offline: bool = True):
    """A selenium Chrome driver on a fresh profile, console log kept, network off when ``offline``.

    The profile folder is removed by ``driver.quit()`` (wrapped below).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    profile = tempfile.mkdtemp(prefix="minimrcnn-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    if offline:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                               {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    quit_driver = driver.quit

    def quit_and_clean():
        quit_driver()
        shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


__all__ = ["CHROMIUM_FLAGS", "browser_missing", "chromium_driver"]
