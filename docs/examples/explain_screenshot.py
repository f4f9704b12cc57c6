"""The screenshot of the explain page in README.md and docs/explain.md.

    python docs/examples/explain_screenshot.py            # writes docs/figures/explain.png

Writes the page of held-out shapes image 9 with the lesson asset weights (what
`minimrcnn explain --shapes-index 9 --weights lessons/assets/shapes_model.npz` writes),
opens it in headless chromium (minimrcnn.viz.headless), clicks the best detection,
hovers one bin of its box-head RoIAlign grid and photographs the window. Needs
chromium, chromium-driver and selenium, like the browser tests.
"""

import os
import sys
import tempfile

from minimrcnn.cli import main
from minimrcnn.viz.headless import browser_missing, chromium_driver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "docs", "figures", "explain.png")


def shoot(out: str = OUT) -> str:
    from selenium.webdriver import ActionChains

    page = os.path.join(tempfile.mkdtemp(), "explain.html")
    weights = os.path.join(ROOT, "lessons", "assets", "shapes_model.npz")
    if main(["explain", "--shapes-index", "9", "--weights", weights, "--out", page]) != 0:
        sys.exit(1)
    driver = chromium_driver(width=1360, height=1240)
    try:
        driver.get("file://" + page)
        best = driver.find_element("css selector", '[data-role="detection"]')
        driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", best)
        cell = driver.find_element("css selector", '[data-role="roi-bin"][data-grid="box"][data-ph="3"][data-pw="3"]')
        ActionChains(driver).move_to_element(cell).perform()
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(out)
    finally:
        driver.quit()
    return out


if __name__ == "__main__":
    missing = browser_missing()
    if missing:
        sys.exit(f"explain_screenshot: {missing}")
    print(shoot())
