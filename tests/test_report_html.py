"""report.html as a reader gets it: its sections, a caption under every figure, nothing fetched,
text escaped, the example browser choosing what the measures say, numbers in one format, and a
page whose size does not grow with the networks."""

from __future__ import annotations

import base64
import html as htmllib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.report import analyze_store, interactive
from engine.report import html as page_html
from engine.report.browser import choose_examples, picture, split_inputs
from engine.report.figures import rank_quintiles
from engine.testing import simulate_population

SECTIONS = ["overview", "agreement", "learning", "soft", "pairwise", "groups", "examples", "run"]
HOSTILE = "a<b>&'c\" </script><script>alert(1)</script>"


class PageReader(HTMLParser):
    """The parts of the page the tests read: sections in order, figures (kind and caption),
    attributes that point anywhere, and the browser's cards (split, kind, shown values)."""

    def __init__(self):
        super().__init__()
        self.sections: list[str] = []
        self.figures: list[dict] = []
        self.links: list[str] = []
        self.cards: list[dict] = []
        self.split = None
        self.kind = None
        self._figure = None
        self._caption = False
        self._heading = False
        self._term = None
        self._value = False
        self._card = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "action", "data"):
            if name in attrs:
                self.links.append(attrs[name])
        classes = (attrs.get("class") or "").split()
        if tag == "section":
            self.sections.append(attrs["id"])
        elif tag == "figure":
            self._figure = {"caption": "", "chart": False, "img": False}
        elif self._figure is not None and tag == "div" and "chart" in classes:
            self._figure["chart"] = True
        elif self._figure is not None and tag == "img":
            self._figure["img"] = True
        elif tag == "p" and "caption" in classes:
            self._caption = True
        elif tag == "h3" and self.sections and self.sections[-1] == "examples":
            self._heading = True
        elif tag == "div" and "cards" in classes:
            self.kind = [c for c in classes if c != "cards"][0]
        elif tag == "div" and "card" in classes:
            self._card = {"split": self.split, "kind": self.kind, "picture": None}
            self.cards.append(self._card)
        elif self._card is not None and tag in ("canvas", "svg"):
            self._card["picture"] = attrs if tag == "canvas" else {"svg": True}
        elif self._card is not None and tag == "dt":
            self._term = ""
        elif self._card is not None and tag == "dd":
            self._value = True

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figures.append(self._figure)
            self._figure = None
        elif tag == "p":
            self._caption = False
        elif tag == "h3":
            self._heading = False
        elif tag == "dd":
            self._value = False

    def handle_data(self, data):
        if self._caption and self._figure is not None:
            self._figure["caption"] += data
        if self._heading:
            self.split = data.strip()
        if self._term is not None and not self._value and self._card is not None:
            self._term += data
        if self._value and self._card is not None:
            self._card[self._term.strip()] = data.strip()
            self._term = None


def read_page(path: Path) -> PageReader:
    reader = PageReader()
    reader.feed(Path(path).read_text(encoding="utf-8"))
    return reader


@pytest.fixture(scope="module")
def soft_report(tmp_path_factory):
    """A store with two groups, soft verdicts and a probe, analysed with pairwise measures."""
    folder = tmp_path_factory.mktemp("soft")
    store = simulate_population(
        folder / "pop.zarr",
        networks=12,
        checkpoints=4,
        splits={"train": 60, "test": 30},
        probe_examples=20,
        groups=2,
        soft=True,
        seed=3,
        network_block=8,
    )
    report = analyze_store(store.path, folder / "out", progress=False)
    return store, report


def test_sections_are_all_there_in_order(soft_report):
    _, report = soft_report
    page = read_page(report)
    assert page.sections == SECTIONS
    text = report.read_text()
    for section in SECTIONS:
        assert f"<a href='#{section}'>" in text


def test_every_figure_has_a_caption_and_every_png_is_shown(soft_report):
    _, report = soft_report
    page = read_page(report)
    pngs = sorted(report.parent.glob("*.png"))
    assert page.figures and all(len(f["caption"].strip()) > 40 for f in page.figures)
    charts = [f for f in page.figures if f["chart"]]
    # The TP-agreement histogram and learning curves of both labelled splits, the data maps of
    # both (soft verdicts on every split, the probe has no labels).
    assert len(charts) == 6
    # Every PNG once: alone, or as the static twin folded under its interactive figure.
    assert report.read_text().count("data:image/png;base64,") == len(pngs)
    assert sum(f["img"] for f in page.figures) == len(pngs)


def test_page_fetches_nothing(soft_report):
    _, report = soft_report
    text = report.read_text()
    page = read_page(report)
    assert page.links, "the page has figures and a table of contents"
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links
    assert "<link" not in text and "@import" not in text
    # url() only of fragments of the page itself (the charts' clip paths).
    assert not re.search(r"url\((?!#)", text)
    assert not re.search(r"<script[^>]*\ssrc=", text)
    # The only address left is SVG's namespace, a name the script creates elements in.
    assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) == {"http://www.w3.org/2000/svg"}


def test_text_is_escaped_and_chart_data_cannot_end_its_script(tmp_path):
    chart = {"title": HOSTILE, "tips": [HOSTILE]}
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    page = page_html.Page(
        HOSTILE,
        [
            page_html.Section(
                "overview",
                HOSTILE,
                [HOSTILE],
                [(HOSTILE, HOSTILE)],
                [page_html.Table(HOSTILE, [HOSTILE], [[HOSTILE]])],
                [
                    page_html.Figure("chart", HOSTILE, chart=chart),
                    page_html.png_figure(png, HOSTILE),
                ],
            )
        ],
    )
    text = page_html.render_page(page)
    assert "<script>alert" not in text and "</script><script>" not in text
    assert text.count("&lt;script&gt;alert(1)") >= 6
    # The chart's JSON comes back whole from its script element.
    (body,) = re.findall(r"<script type='application/json'>(.*?)</script>", text, re.S)
    assert json.loads(body) == chart


def _cards(page: PageReader, split: str, kind: str) -> list[dict]:
    return [c for c in page.cards if c["split"] == split and c["kind"] == kind]


def test_browser_shows_the_examples_the_measures_rank(soft_report):
    store, report = soft_report
    page = read_page(report)
    examples = pd.read_parquet(report.parent / "examples.parquet")
    for split in ("train", "test"):
        table = examples[examples.split == split].reset_index(drop=True)
        ids = store.example_ids(split)
        accessibility = table.accessibility.to_numpy()
        distance = np.abs(table.tpa_last.to_numpy() - 0.5)
        expected = {
            "hardest": np.argsort(accessibility, kind="stable")[:6],
            "easiest": np.argsort(-accessibility, kind="stable")[:6],
            "disputed": np.argsort(distance, kind="stable")[:6],
        }
        for kind, positions in expected.items():
            cards = _cards(page, split, kind)
            assert [int(c["position"]) for c in cards] == positions.tolist()
            assert [int(c["id"]) for c in cards] == ids[positions].tolist()
            shown = [float(c["accessibility"]) for c in cards]
            np.testing.assert_allclose(shown, accessibility[positions], atol=5e-4)
        hardest = [float(c["accessibility"]) for c in _cards(page, split, "hardest")]
        assert max(hardest) <= np.sort(accessibility)[6]
    # The simulated store keeps no inputs and was not trained here: the page says so.
    assert "No pictures: the store&#39;s data set (synthetic-3) was not built by" in (
        report.read_text()
    )


def test_choice_of_examples_skips_unlabelled_ones_and_breaks_ties_by_order():
    accessibility = np.array([0.5, np.nan, 0.1, 0.1, 0.9, 0.9])
    tpa_last = np.array([0.5, np.nan, 0.0, 0.4, 1.0, 0.6])
    chosen = choose_examples(accessibility, tpa_last, count=2)
    assert chosen["hardest"].tolist() == [2, 3]
    assert chosen["easiest"].tolist() == [4, 5]
    assert chosen["disputed"].tolist() == [0, 3]


def test_one_format_per_number(soft_report):
    _, report = soft_report
    summary = json.loads((report.parent / "summary.json").read_text())
    text = report.read_text()
    for split in ("train", "test"):
        s = summary["splits"][split]
        accuracy = page_html.percent(s["accuracy_mean"][-1])
        extreme = page_html.percent(s["extreme_fraction"][-1])
        assert f"right on {accuracy} of examples" in text
        assert f"<th>{split}: accuracy (last)</th><td>{accuracy}</td>" in text
        assert f"{split}: {extreme} of examples are classified correctly" in text
        assert f"<th>{split}: extreme fraction (last) / null</th><td>{extreme} / " in text
        easy = page_html.percent(s["soft"]["population_region_share"]["easy"])
        assert f"{easy} of examples are easy" in text
        assert f"<td>{easy} / " in text
    # No share is written as a bare ratio in the numbers tables.
    rows = re.findall(r"<th>([^<]*)</th><td>([^<]*)</td>", text)
    for label, value in rows:
        if any(w in label for w in ("accuracy", "extreme", "consensus", "agreement (")):
            assert "%" in value, (label, value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (0.0, "0.0%"),
        (0.9123, "91.2%"),
        (9.4e-5, "0.0094%"),
        (1e-5, "0.001%"),
        (9.4e-8, "< 0.001%"),
    ],
)
def test_percent(value, shown):
    assert page_html.percent(value) == shown


def test_quintiles_by_rank_when_ties_collapse_the_edges():
    tied = np.array([1.0] * 30 + list(np.linspace(0.1, 0.9, 20)))
    quintiles = rank_quintiles(tied)
    assert [q.members.size for q in quintiles] == [10] * 5
    labels = [q.label for q in quintiles]
    assert len(set(labels)) == 5
    assert all("ranks" in label for label in labels)
    assert "ranks 1-10 of 50" in labels[-1] and "ranks 41-50 of 50" in labels[0]
    # Every member of a fifth is at least as accessible as every member of the one before.
    for low, high in zip(quintiles, quintiles[1:], strict=False):
        assert tied[low.members].max() <= tied[high.members].min()
    spread = rank_quintiles(np.linspace(0, 1, 50))
    assert spread[0].label == "least accessible fifth, accessibility 0.00-0.18"
    assert all("ranks" not in q.label for q in spread)


def test_one_checkpoint_store_gets_no_curves(tmp_path):
    store = simulate_population(
        tmp_path / "final.zarr",
        networks=10,
        checkpoints=1,
        splits={"test": 40},
        probe_examples=15,
        seed=2,
        network_block=8,
    )
    report = analyze_store(store.path, tmp_path / "out", progress=False)
    page = read_page(report)
    text = report.read_text()
    assert page.sections == SECTIONS
    assert not (tmp_path / "out" / "learning_curves_test.png").exists()
    assert not (tmp_path / "out" / "accuracy.png").exists()
    assert "figure-curves_test" not in text
    assert "One checkpoint: no learning curves" in text
    assert "figure-tpa_test" in text
    # On the probe (no labels) only prediction agreement is shown of the pairwise measures.
    assert "probe: mean prediction agreement" in text
    assert "probe: mean pairwise agreement" not in text
    assert "probe: mean pairwise kappa" not in text
    assert "probe: no true labels, so which examples a network gets right is not defined" in text


def test_histogram_spec_is_bounded_at_a_hundred_thousand_networks():
    size = 100_000
    rng = np.random.default_rng(0)
    counts = rng.multinomial(50_000, np.ones(size + 1) / (size + 1)).astype(float)
    summary = {"tpa_histogram": [counts.tolist()] * 3, "null_histogram": [counts.tolist()] * 3}
    spec = interactive.tpa_histogram_spec("test", summary, np.arange(3.0))
    (bars, _) = spec["frames"][-1]["marks"]
    assert len(bars["data"]) <= 52
    assert sum(row[3] for row in bars["data"]) == pytest.approx(50_000)
    assert len(json.dumps(spec)) < 40_000
    many = interactive.tpa_histogram_spec(
        "test",
        {"tpa_histogram": [[1, 2, 3]] * 500, "null_histogram": [[1, 2, 3]] * 500},
        np.arange(500.0),
    )
    assert len(many["frames"]) == interactive.MAX_FRAMES


def test_data_map_spec_is_cells_whatever_the_examples():
    rng = np.random.default_rng(1)
    count = 200_000
    examples = {
        "variability_mean": rng.uniform(0, 0.5, count),
        "confidence_mean": rng.uniform(0, 1, count),
        "correctness_mean": rng.uniform(0, 1, count),
    }
    thresholds = {"ambiguous_variability": 0.2, "easy_confidence": 0.75, "hard_confidence": 0.25}
    spec = interactive.data_map_spec("train", examples, thresholds)
    cells = spec["frames"][0]["marks"][0]
    assert len(cells["data"]) <= 40 * 40
    assert sum(row[4] for row in cells["values"]) == count
    assert len(cells["values"]) == len(cells["data"])


def test_page_size_does_not_grow_with_the_networks(tmp_path):
    sizes = {}
    # Both above the 51 networks up to which histograms have one bar per k.
    for networks in (200, 800):
        store = simulate_population(
            tmp_path / f"s{networks}.zarr",
            networks=networks,
            checkpoints=3,
            splits={"test": 80},
            probe_examples=20,
            groups=2,
            soft=True,
            seed=1,
        )
        report = analyze_store(
            store.path, tmp_path / f"out{networks}", matrices=False, progress=False
        )
        # The PNGs are binned by figures.py (tested there); the rest of the page is ours.
        text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", report.read_text())
        sizes[networks] = len(text)
    assert abs(sizes[800] - sizes[200]) < 0.02 * sizes[200], sizes
    assert sizes[800] < 400_000


def test_pictures_of_sequences_and_images():
    curve = picture(np.sin(np.linspace(0, 6, 40))[None].astype(np.float32))
    assert curve is not None and curve.kind == "sequence"
    assert len(curve.points) == 1 and len(curve.points[0].split()) == 40
    image = picture(np.arange(64, dtype=np.float32).reshape(1, 8, 8))
    assert image is not None and image.kind == "image" and image.shape == (8, 8, 1)
    pixels = np.frombuffer(base64.b64decode(image.pixels), np.uint8)
    assert pixels[0] == 0 and pixels[-1] == 255
    assert picture(np.zeros(20, np.float32)) is None


def test_digits_pictures_are_the_examples_measured(tmp_path):
    from sklearn.datasets import load_digits

    from engine.train.config import RunOptions
    from engine.train.loop import train_population
    from engine.train.study import study_from_flags

    study = study_from_flags(dataset="digits", arch="linear", networks=4, epochs=1)
    store = tmp_path / "digits.zarr"
    train_population(study, store, RunOptions(device="cpu", quiet=True, command="test"))
    report = analyze_store(
        str(store), tmp_path / "out", pairwise_checkpoints="none", progress=False
    )
    page = read_page(report)
    digits = load_digits()
    cards = [c for c in page.cards if c["picture"]]
    assert len(cards) == len(page.cards) == 2 * 3 * 6
    for card in cards:
        example = int(card["id"])
        assert card["label"] == str(digits.target[example])
        shape = tuple(int(v) for v in card["picture"]["data-shape"].split(","))
        assert shape == (8, 8, 1)
        shown = np.frombuffer(base64.b64decode(card["picture"]["data-pixels"]), np.uint8)
        raw = digits.images[example].ravel()
        expected = np.round(255 * (raw - raw.min()) / (raw.max() - raw.min()))
        np.testing.assert_allclose(shown, expected, atol=1)
    if CHROMIUM is not None:
        # Painted: every canvas has lit pixels (a digit's strokes).
        painted = run_in_browser(report, tmp_path)["canvases"]
        assert len(painted) == len(cards) and min(painted) > 0


def test_pictures_say_why_they_are_missing(tmp_path):
    import engine

    store = simulate_population(tmp_path / "s.zarr", networks=4, checkpoints=2, seed=0)
    inputs, note = split_inputs(store, ["train"])
    assert inputs == {} and "not built by engine train-population" in note
    population = engine.open_population(store.path)
    population.attrs["extra"] = {"train_config": {"data": {"name": "cifar10"}}}
    population.attrs["dataset"] = {**population.attrs["dataset"], "name": "cifar10"}
    inputs, note = split_inputs(population, ["train"])
    assert inputs == {} and "engine analyze --data-dir FOLDER" in note


def test_images_read_from_files_are_shown_with_the_data_folder(tmp_path, capsys):
    """A data set read from files (CIFAR-10's python batches, written small in their real
    format): the store does not keep the folder, `engine analyze --data-dir` gives it."""
    from cli.app import main
    from tests.test_data import make_cifar

    batch = make_cifar(tmp_path / "data" / "cifar-10-batches-py", per_batch=40)
    store = tmp_path / "cifar.zarr"
    flags = ["--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--arch", "linear"]
    code = main(
        ["train-population", *flags, "--networks", "2", "--epochs", "1", "--quiet"]
        + ["--out", str(store)]
    )
    assert code == 0, capsys.readouterr().err
    common = ["analyze", str(store), "--pairwise-checkpoints", "none", "--no-progress"]
    assert main([*common, "-o", str(tmp_path / "without")]) == 0
    page = read_page(tmp_path / "without" / "report.html")
    assert not any(c["picture"] for c in page.cards) and page.cards
    assert "--data-dir" in (tmp_path / "without" / "report.html").read_text()
    out = tmp_path / "with"
    assert main([*common, "-o", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    page = read_page(out / "report.html")
    test_cards = [c for c in page.cards if c["split"] == "test"]
    assert test_cards and all(c["picture"] for c in page.cards)
    for card in test_cards:
        shape = tuple(int(v) for v in card["picture"]["data-shape"].split(","))
        assert shape == (32, 32, 3)
        shown = np.frombuffer(base64.b64decode(card["picture"]["data-pixels"]), np.uint8)
        # The test batch's row of this example, CIFAR's channel-first bytes as an image.
        raw = batch[b"data"][int(card["id"])].reshape(3, 32, 32).astype(np.float64)
        expected = np.round(255 * (raw - raw.min()) / (raw.max() - raw.min()))
        np.testing.assert_allclose(shown, np.moveaxis(expected, 0, -1).ravel(), atol=1)


# ----------------------------------------------------------------------------------------------
# In a browser: the charts are drawn, answer hover, zoom and reset, and pictures are painted

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Run in the page after its own script: what a reader's hover, drag, double-click and slider
#: do, written into an attribute that --dump-dom prints.
SELF_TEST = """
<script>
(function () {
  var out = {}, charts = document.querySelectorAll(".chart");
  var ticks = function (svg) {
    return Array.prototype.map.call(svg.querySelectorAll(".axis text"), function (t) {
      return t.textContent; }).join("|");
  };
  out.charts = charts.length;
  out.marks = Array.prototype.map.call(charts, function (c) {
    return c.querySelectorAll("svg [data-tip]").length; });
  var target = charts[0].querySelector("[data-tip]"), box = target.getBoundingClientRect();
  target.dispatchEvent(new MouseEvent("mousemove",
    {bubbles: true, clientX: box.left + 1, clientY: box.top + 1}));
  var tooltip = document.getElementById("tooltip");
  out.tip = tooltip.textContent;
  out.tipShown = tooltip.style.display;
  var svg = charts[0].querySelector("svg"), b = svg.getBoundingClientRect();
  out.before = ticks(svg);
  svg.dispatchEvent(new MouseEvent("mousedown",
    {bubbles: true, clientX: b.left + 0.6 * b.width, clientY: b.top + 40}));
  window.dispatchEvent(new MouseEvent("mouseup",
    {clientX: b.left + 0.95 * b.width, clientY: b.top + 80}));
  svg = charts[0].querySelector("svg");
  out.zoomed = ticks(svg);
  svg.dispatchEvent(new MouseEvent("dblclick", {bubbles: true}));
  out.reset = ticks(charts[0].querySelector("svg"));
  var slider = charts[0].querySelector("input[type=range]");
  if (slider) {
    var label = slider.nextSibling.textContent;
    slider.value = 0;
    slider.dispatchEvent(new Event("input"));
    out.slider = [label, slider.nextSibling.textContent];
  }
  out.canvases = Array.prototype.map.call(document.querySelectorAll("canvas.pixels"),
    function (c) {
      var data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data, lit = 0;
      for (var i = 0; i < data.length; i += 4) { if (data[i] > 0) { lit++; } }
      return lit;
    });
  document.body.setAttribute("data-self-test", JSON.stringify(out));
})();
</script>
"""


def run_in_browser(report: Path, folder: Path) -> dict:
    """The page's self-test results from headless Chromium."""
    page = folder / "self_test.html"
    page.write_text(report.read_text().replace("</body>", SELF_TEST + "</body>"))
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,2000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (found,) = re.findall(r'data-self-test="([^"]*)"', done.stdout)
    return json.loads(htmllib.unescape(found))


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_charts_answer_hover_zoom_reset_and_slider_in_a_browser(soft_report, tmp_path):
    _, report = soft_report
    result = run_in_browser(report, tmp_path)
    assert result["charts"] == 6
    assert all(marks > 0 for marks in result["marks"])
    assert result["tipShown"] == "block"
    assert re.search(r"^0 of 12 networks right: examples observed \d+, expected", result["tip"])
    assert result["zoomed"] != result["before"]
    assert result["reset"] == result["before"]
    # The slider starts at the last checkpoint (epoch 3) and goes to the first.
    assert result["slider"] == [" epoch 3", " epoch 0"]
    assert result["canvases"] == []


def test_compare_page_captions_name_the_stores(tmp_path):
    from engine.report import compare_stores

    stores = [
        simulate_population(
            tmp_path / f"{name}.zarr", networks=n, checkpoints=3, splits={"test": 50}, seed=9
        ).path
        for name, n in (("first", 8), ("second", 12))
    ]
    report = compare_stores(stores, tmp_path / "out", progress=False)
    page = read_page(report)
    assert page.sections == ["overview", "figures", "run"]
    pngs = list((tmp_path / "out").rglob("*.png"))
    assert len(page.figures) == len(pngs) >= 3
    captions = [f["caption"] for f in page.figures]
    assert all(len(c) > 40 for c in captions)
    assert sum("first" in c and "second" in c for c in captions) == 2


def test_a_study_that_cannot_be_rebuilt_gives_a_page_without_pictures(tmp_path):
    import engine

    store = simulate_population(tmp_path / "s.zarr", networks=4, checkpoints=2, seed=0)
    population = engine.open_population(store.path)
    population.attrs["dataset"] = {**population.attrs["dataset"], "name": "digits"}
    population.attrs["extra"] = {"train_config": {"data": {"name": "digits", "unknown": 1}}}
    inputs, note = split_inputs(population, ["train"])
    assert inputs == {} and "could not be rebuilt here" in note and "unknown" in note
    # Rebuilt, but not the store's data: its fingerprint differs.
    population.attrs["extra"] = {"train_config": {"data": {"name": "digits"}}}
    inputs, note = split_inputs(population, ["train"])
    assert inputs == {} and "fingerprints differ" in note


def test_report_size_benchmark_smoke(tmp_path):
    from tests.test_benchmarks import json_lines, run_benchmark

    rows = json_lines(run_benchmark("report_size.py", tmp_path, "--smoke", "--dir", str(tmp_path)))
    assert [row["networks"] for row in rows] == [60, 240]
    for row in rows:
        assert row["charts"] == 6
        assert 0 < row["chart_bytes"] < row["page_bytes_without_png"] < row["page_bytes"]
        assert row["page_parts_seconds"] is not None
