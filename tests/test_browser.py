"""Each tab used once in headless Chromium, with a screenshot per tab for the README.

Needs Debian's chromium and the Python package playwright (its driver only: never
``playwright install``); skipped where either is missing. Screenshots go to HW3_SCREENSHOTS, else
a temporary folder: these show the tiny test models, not the README's screenshots of the real ones.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

# Headless, and nothing that reaches outside this machine.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("HW3_SCREENSHOTS", Path(tempfile.gettempdir()) / "hw3-screenshots"))
TABS = ["Domain (AlexNet)", "Sentiment (GRU vs LSTM)", "Shakespeare writer"]
TIMEOUT_MS = 60_000
PERCENT = re.compile(r"^\d+(\.\d+)?%$")  # one row of a gr.Label


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        page.goto(app_url)
        yield page
        browser.close()


def screenshot(page, name: str) -> None:
    """The whole page, after the lazily loaded training plots have come into view."""
    for image in page.locator(".training-curves img").all():
        if image.is_visible():
            image.scroll_into_view_if_needed()
    page.wait_for_function("() => Array.from(document.images).every(image => image.complete)")
    page.mouse.move(0, 0)  # no hover highlight where the last click was
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def open_tab(page, title: str):
    page.get_by_role("tab", name=title).click()
    return page.locator("[role=tabpanel]:visible")


def test_the_page_has_the_three_tabs(page):
    for title in TABS:
        sync_api.expect(page.get_by_role("tab", name=title)).to_be_visible()


def test_domain_tab_classifies_a_drawn_example(page):
    tab = open_tab(page, TABS[0])
    tab.get_by_role("button", name="cartoon").click()
    sync_api.expect(tab.get_by_text(PERCENT)).to_have_count(3 * 4)  # three variants, four domains each
    sync_api.expect(tab.get_by_text(re.compile(r" · \d+ ms$"))).to_have_count(3)
    sync_api.expect(tab.get_by_text("How these models were trained")).to_be_visible()
    screenshot(page, "domain")


def test_sentiment_tab_scores_a_review(page):
    tab = open_tab(page, TABS[1])
    tab.get_by_label("Review").fill("The film was great, I loved it.")
    tab.get_by_role("button", name="Score").click()
    sync_api.expect(tab.get_by_text(PERCENT)).to_have_count(2 * 2)
    sync_api.expect(tab.get_by_text(re.compile(r"ms · [\d,]+ parameters$"))).to_have_count(2)
    sync_api.expect(tab.get_by_role("cell", name="0.8125")).to_have_count(2)  # the last validation accuracies
    screenshot(page, "sentiment")


def test_writer_tab_streams_text_after_the_prime(page):
    tab = open_tab(page, TABS[2])
    tab.get_by_role("button", name="Write").click()
    text = tab.locator("textarea").last  # below the prime
    sync_api.expect(text).to_have_value(re.compile(r"^ROMEO[\s\S]{1000}$"))  # the default length
    screenshot(page, "writer")


def test_writer_keeps_its_text_when_a_prime_is_refused_and_stop_is_idle_when_nothing_runs(page):
    tab = open_tab(page, TABS[2])
    stop = tab.get_by_role("button", name="Stop")
    text = tab.locator("textarea").last
    tab.get_by_role("button", name="Write").click()
    sync_api.expect(text).to_have_value(re.compile(r"^ROMEO[\s\S]{1000}$"))
    sync_api.expect(stop).to_be_disabled()  # writing has ended
    written = text.input_value()
    prime = tab.get_by_label("Prime")
    prime.fill("ROMEO ☃")  # a character no play has
    tab.get_by_role("button", name="Write").click()
    sync_api.expect(page.get_by_text("characters the model never saw")).to_be_visible()
    assert text.input_value() == written
    prime.fill("ROMEO")
