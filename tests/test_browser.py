"""Each tab used once in headless Chromium, with a screenshot per tab for the README.

Needs Debian's chromium and the Python package playwright (its driver only: never
``playwright install``); skipped where either is missing. Screenshots go to HW3_SCREENSHOTS, else
a temporary folder: these show the tiny test models, not the README's screenshots of the real ones.
HW3_BROWSER_CHECKPOINTS serves another checkpoint root instead of the tiny models. The README's
screenshots are of the shipped models, as a Space shows them (its install line, with the README's
placeholder for the Space's name, not this machine's folder):

    SPACE_ID=ORG/hw3-demos HW3_BROWSER_CHECKPOINTS=checkpoints HW3_SCREENSHOTS=docs/screenshots \
        pytest tests/test_browser.py
"""

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from conftest import running_app
from hw3core.records import read_run

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

# Headless, and nothing that reaches outside this machine.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("HW3_SCREENSHOTS", Path(tempfile.gettempdir()) / "hw3-screenshots"))
TABS = ["Domain (AlexNet)", "Sentiment (GRU vs LSTM)", "Shakespeare writer", "Check your model"]
TIMEOUT_MS = 60_000
PERCENT = re.compile(r"^\d+(\.\d+)?%$")  # one row of a gr.Label


@pytest.fixture(scope="module")
def served_root(request) -> Path:
    root = os.environ.get("HW3_BROWSER_CHECKPOINTS")
    return Path(root) if root else request.getfixturevalue("checkpoints")


@pytest.fixture(scope="module")
def served_url(request, served_root):
    if "HW3_BROWSER_CHECKPOINTS" not in os.environ:
        yield request.getfixturevalue("app_url")
        return
    with running_app(served_root) as url:
        yield url


@pytest.fixture(scope="module")
def page(served_url, tmp_path_factory):
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
        page.goto(served_url)
        yield page
        browser.close()


def screenshot(page, name: str) -> None:
    """The whole page, after the lazily loaded training plots have come into view."""
    for image in page.locator(".training-curves img").all():
        if image.is_visible():
            image.scroll_into_view_if_needed()
    # Images in a tab not shown (offsetParent null) load lazily, maybe never: they are not in the picture either.
    page.wait_for_function("() => Array.from(document.images).every(image => image.complete || !image.offsetParent)")
    page.mouse.move(0, 0)  # no hover highlight where the last click was
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def screenshot_of(page, selector: str, name: str) -> None:
    """One part of the page, once its images have loaded."""
    part = page.locator(selector).first
    part.scroll_into_view_if_needed()
    # Its own images: another tab's load lazily, maybe never.
    page.wait_for_function("(selector) => Array.from(document.querySelector(selector).querySelectorAll('img'))"
                           ".every(image => image.complete)", arg=selector)
    page.mouse.move(0, 0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    part.screenshot(path=SCREENSHOTS / f"{name}.png")


def open_tab(page, title: str):
    page.get_by_role("tab", name=title).click()
    return page.locator("[role=tabpanel]:visible")


def test_the_page_has_its_four_tabs(page):
    for title in TABS:
        sync_api.expect(page.get_by_role("tab", name=title)).to_be_visible()


def test_domain_tab_classifies_a_drawn_example(page):
    tab = open_tab(page, TABS[0])
    tab.get_by_role("button", name="cartoon").click()
    sync_api.expect(tab.get_by_text(PERCENT)).to_have_count(3 * 4)  # three variants, four domains each
    sync_api.expect(tab.get_by_text(re.compile(r" · \d+ ms$"))).to_have_count(3)
    sync_api.expect(tab.get_by_text("How these models were trained")).to_be_visible()
    screenshot(page, "domain")


def test_sentiment_tab_scores_a_review(page, served_root):
    tab = open_tab(page, TABS[1])
    tab.get_by_label("Review").fill("The film was great, I loved it.")
    tab.get_by_role("button", name="Score").click()
    sync_api.expect(tab.get_by_text(PERCENT)).to_have_count(2 * 2)
    sync_api.expect(tab.get_by_text(re.compile(r"ms · [\d,]+ parameters$"))).to_have_count(2)
    figures = []  # each kept epoch's validation accuracy, from its records
    for name in ("sentiment-gru", "sentiment-lstm"):
        folder = served_root / name
        figures.append(f"{read_run(folder).kept.val_accuracy:.4f}")
    for figure, count in Counter(figures).items():
        sync_api.expect(tab.get_by_role("cell", name=figure, exact=True)).to_have_count(count)
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
    sync_api.expect(stop).to_be_disabled()  # nothing is being written
    prime.fill("ROMEO")


# ----- inside the models -----


def open_inside(tab):
    tab.get_by_role("button", name="Inside the models").click()


def test_inside_the_alexnets_where_they_looked_and_their_first_layers(page):
    tab = open_tab(page, TABS[0])
    tab.get_by_role("button", name="cartoon", exact=True).click()  # the example, not a label's row
    sync_api.expect(tab.get_by_text(PERCENT)).to_have_count(3 * 4)
    open_inside(tab)
    tab.get_by_role("button", name="Where did each AlexNet look?").click()
    maps = tab.locator(".inside-gradcam")
    for domain in ("art painting", "cartoon", "photo", "sketch"):  # each variant's legend
        sync_api.expect(maps.get_by_text(domain, exact=True)).to_have_count(3)
    sync_api.expect(maps.locator("img")).to_have_count(3 * 5)  # each image under its four maps
    screenshot_of(page, ".inside-gradcam", "inside-domain-gradcam")
    tab.get_by_role("button", name="Show the first layers and the architectures").click()
    layers = tab.locator(".inside-layers")
    sync_api.expect(layers.locator("table")).to_have_count(3)
    sync_api.expect(layers.locator("img")).to_have_count(3)
    sync_api.expect(layers).to_contain_text("conv 21×21, 96, stride 8")  # the large kernels
    screenshot_of(page, ".inside-layers", "inside-domain-first-layers")


def test_an_uploaded_image_serves_every_button_of_its_tab_after_its_file_is_deleted(page, tmp_path_factory):
    """The upload is deleted once read (demos.received): the tab's next button, which sends the same file
    again, is answered from the image kept in memory, and the preview the page shows stays whole."""
    from PIL import Image

    path = tmp_path_factory.mktemp("upload") / "my photo.png"
    Image.new("RGB", (300, 200), (180, 120, 60)).save(path)  # not an example: a file only this test sends
    tab = open_tab(page, TABS[0])
    tab.locator("input[type=file]").first.set_input_files(path)
    sync_api.expect(tab.get_by_text(re.compile(r" · \d+ ms$"))).to_have_count(3)  # classified on upload
    explain = tab.get_by_role("button", name="Where did each AlexNet look?")
    if not explain.is_visible():  # the page is shared: an earlier test may have opened the views
        open_inside(tab)
    maps = tab.locator(".inside-gradcam img")
    before = maps.first.get_attribute("src") if maps.count() else None  # an earlier test's maps, if any
    explain.click()
    sync_api.expect(maps).to_have_count(3 * 5)
    if before is not None:  # answered: the maps are this image's
        sync_api.expect(maps.first).not_to_have_attribute("src", before)
    preview = tab.locator("img").first
    sync_api.expect(preview).to_be_visible()
    assert preview.evaluate("image => image.complete && image.naturalWidth > 0")
    sync_api.expect(page.get_by_text("no longer on the server")).to_have_count(0)


def test_inside_the_sentiment_models_curve_words_and_gates(page):
    tab = open_tab(page, TABS[1])
    tab.get_by_label("Review").fill(
        "The first half is slow and the lead is miscast, but the last forty minutes are gripping and the score is "
        "wonderful.")
    open_inside(tab)
    tab.get_by_role("button", name="Look inside: read the review word by word").click()
    sync_api.expect(tab.locator(".inside-curve canvas, .inside-curve svg").first).to_be_visible()
    sync_api.expect(tab.locator(".inside-curve").get_by_text("wonderful", exact=False)).not_to_have_count(0)
    sync_api.expect(tab.locator(".inside-influence").get_by_text("gripping", exact=False)).to_have_count(2)
    sync_api.expect(tab.locator(".inside-gates img")).to_have_count(3)
    sync_api.expect(tab.locator(".inside-gates canvas, .inside-gates svg").first).to_be_visible()
    screenshot_of(page, ".inside-curve", "inside-sentiment-curve")
    screenshot_of(page, ".inside-influence", "inside-sentiment-influence")
    screenshot_of(page, ".inside-gates", "inside-sentiment-gates")


def test_inside_the_writer_surprise_and_candidates(page):
    tab = open_tab(page, TABS[2])
    tab.get_by_label("Prime").fill("JULIET")  # a text no other test writes: its full length says writing is done
    tab.get_by_role("button", name="Write").click()
    written = re.compile(r"^JULIET[\s\S]{1000}$")
    sync_api.expect(tab.locator("textarea").nth(1)).to_have_value(written)  # below the prime
    open_inside(tab)
    tab.get_by_role("button", name="Inspect the written text").click()
    view = tab.locator(".inside-writer")
    sync_api.expect(view.get_by_label("Text to inspect")).to_have_value(written)
    sync_api.expect(view.get_by_text(PERCENT)).to_have_count(5)  # the next character's candidates
    view.get_by_text("L", exact=True).first.click()  # the third character of JULIET
    sync_api.expect(view.get_by_text(re.compile(r"^Character 3, L: surprise"))).to_be_visible()
    sync_api.expect(view.get_by_text(PERCENT)).to_have_count(2 * 5)
    screenshot_of(page, ".inside-writer", "inside-writer")
    tab.get_by_label("Prime").fill("ROMEO")


def inside_opened(tab, view: str):
    """The view of "Inside the models", its accordion opened if an earlier test has not left it open."""
    if not tab.locator(view).first.is_visible():
        open_inside(tab)
    return tab.locator(view)


def box_heights(view) -> list[tuple[float, float]]:
    """(height drawn, height of the content) of each text view's box (a HighlightedText's text field)."""
    fields = view.locator(".textfield").all()
    return [field.evaluate("field => [field.clientHeight, field.scrollHeight]") for field in fields]


def test_a_long_review_is_read_inside_boxes_that_scroll_not_down_a_page_kilometres_long(page):
    tab = open_tab(page, TABS[1])
    review = "The first half drags, but the ending is wonderful and the cast is superb. " * 270  # 20,000 characters
    tab.get_by_label("Review").fill(review)
    inside_opened(tab, ".inside-curve")
    tab.get_by_role("button", name="Look inside: read the review word by word").click()
    for view in (tab.locator(".inside-curve"), tab.locator(".inside-influence")):
        sync_api.expect(view.get_by_text("superb", exact=False).last).to_be_attached()
        heights = box_heights(view)
        assert heights and all(drawn <= 400 < content for drawn, content in heights), heights
    assert page.evaluate("document.documentElement.scrollHeight") < 6000
    tab.get_by_label("Review").fill("")


def test_a_long_text_is_inspected_inside_a_box_that_scrolls(page):
    tab = open_tab(page, TABS[2])
    view = inside_opened(tab, ".inside-writer")
    view.get_by_label("Text to inspect").fill(("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 30)[:1500])
    view.get_by_role("button", name="Inspect", exact=True).click()
    sync_api.expect(view.locator(".surprise-text .textfield")).to_contain_text(re.compile(r"y\s*o\s*n\s*d\s*e\s*r"))
    heights = box_heights(view)
    assert heights and all(drawn <= 400 < content for drawn, content in heights), heights
    view.get_by_label("Text to inspect").fill("")


# ----- check your model -----


def test_a_refused_file_is_explained_in_the_report_not_only_in_a_fading_pop_up(page, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a model")
    tab = open_tab(page, TABS[3])
    tab.locator("input[type=file]").first.set_input_files(garbage)
    sync_api.expect(tab.get_by_text("garbage.pt").first).to_be_visible()  # uploaded
    tab.get_by_role("button", name="Check", exact=True).click()
    report = tab.locator(".check-report")
    sync_api.expect(report.get_by_role("heading", name="✘ Not checked")).to_be_visible()
    sync_api.expect(report).to_contain_text("garbage.pt is not a PyTorch checkpoint (torch.save) or a safetensors file")
    tab.get_by_role("button", name="Clear").first.click()
    sync_api.expect(tab.locator("input[type=file]")).not_to_have_count(0)


def test_check_your_model_with_a_students_alexnet(page, tmp_path_factory):
    import torch
    from student_models import StudentAlexNet

    from demos.examples import example_images

    folder = tmp_path_factory.mktemp("student")
    torch.manual_seed(0)
    torch.save(StudentAlexNet().state_dict(), folder / "best_model.pt")  # a freshly initialised student's AlexNet
    tab = open_tab(page, TABS[3])
    tab.locator("input[type=file]").first.set_input_files(folder / "best_model.pt")
    sync_api.expect(tab.get_by_text("best_model.pt").first).to_be_visible()  # uploaded
    tab.get_by_label("It should be").click()
    page.get_by_role("option", name="AlexNetLargeKernel", exact=True).click()
    tab.get_by_role("button", name="Check", exact=True).click()
    sync_api.expect(tab.get_by_role("heading", name="✘ AlexNetLargeKernel")).to_be_visible()
    sync_api.expect(tab.get_by_text("pick it under It should be and press Check again").first).to_be_visible()
    tab.get_by_label("It should be").click()
    page.get_by_role("option", name="auto", exact=True).click()
    tab.get_by_role("button", name="Check", exact=True).click()  # the file was deleted once read: its weights wait
    # AlexNet or AlexNetAvgPooling: the same weights, and an untrained model's answers settle nothing: it asks
    sync_api.expect(tab.get_by_text("pick AlexNet or AlexNetAvgPooling").first).to_be_visible()
    reading = tab.get_by_label("Read your weights as")
    reading.fill("AlexNet")
    reading.press("Enter")
    tab.get_by_role("button", name="Check", exact=True).click()  # the file was deleted once read: its weights wait
    sync_api.expect(tab.get_by_role("heading", name="✔ AlexNet")).to_be_visible()
    report = tab.locator(".check-report")
    sync_api.expect(report).to_contain_text("✔  Conv2d-1")
    sync_api.expect(report).to_contain_text("58,297,732 parameters")
    view = tab.locator(".check-alexnet")
    sync_api.expect(view).to_be_visible()
    view.locator("input[type=file]").first.set_input_files(example_images()[0])
    view.get_by_role("button", name="Classify with both").click()
    sync_api.expect(view.get_by_text(PERCENT)).to_have_count(2 * 4)  # yours and ours, four domains each
    sync_api.expect(view.locator("img")).to_have_count(1 + 2 * 5)  # the input; each map's image and four domains
    for image in view.locator("img").all():  # loaded lazily: each comes into view once
        image.scroll_into_view_if_needed()
    screenshot(page, "check-model")


def test_your_curves_beside_ours(page, tmp_path_factory):
    """A student's AlexNet run as the starter logs it (loss per step, accuracies in percent per epoch) beside ours."""
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    folder = tmp_path_factory.mktemp("student-log")
    steps_per_epoch, noise = 300, np.random.default_rng(0)
    with SummaryWriter(str(folder / "alexnet")) as writer:
        for step in range(5 * steps_per_epoch):
            writer.add_scalar("Loss/train", 1.3 * np.exp(-step / 500) + 0.25 + 0.08 * noise.standard_normal(), step)
        for epoch, (train, val, val_loss) in enumerate(zip([58, 70, 77, 83, 88], [64, 73, 79, 82, 81],
                                                           [0.95, 0.74, 0.6, 0.55, 0.63], strict=True)):
            writer.add_scalar("Accuracy/train", train, epoch)
            writer.add_scalar("Accuracy/val", val, epoch)
            writer.add_scalar("Loss/val", val_loss, epoch)
    (event_file,) = folder.rglob("*tfevents*")
    tab = open_tab(page, TABS[3])
    panel = tab.locator(".your-curves")
    panel.locator("input[type=file]").first.set_input_files(event_file)
    sync_api.expect(panel.get_by_text(event_file.name[:20]).first).to_be_visible()  # uploaded
    panel.get_by_label("Its part (model)").click()
    page.get_by_role("option", name="AlexNet", exact=True).click()
    panel.get_by_role("button", name="Compare with ours").click()
    sync_api.expect(panel).to_contain_text("yours reached it at epoch 4")
    sync_api.expect(panel).to_contain_text("Overfitting from epoch 5")
    sync_api.expect(panel.locator("img").first).to_be_visible()  # the figure
    screenshot_of(page, ".your-curves", "your-curves")
