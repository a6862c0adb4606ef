"""The Insights charts as a user reads them: labels apart and complete, waste told apart from
layers, rows tall enough at many layers, a treemap that shows folders inside folders."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("PySide6.QtWidgets")

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QFontMetricsF, QHelpEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolTip  # noqa: E402

from explorer.formats.source import open_source  # noqa: E402
from explorer.image.loader import load_image  # noqa: E402
from explorer.tree.views import MERGED, TreeView  # noqa: E402
from explorer.ui.charts import FILE_BOX, FOLDER_BOX, LayerChart, Treemap, layer_colour, waste_colour  # noqa: E402
from explorer.ui.format import human_size  # noqa: E402
from tests.builders import docker_archive, f, layer_tar  # noqa: E402
from tests.gui_fixtures import private_settings, window  # noqa: E402,F401 (fixtures)


@pytest.fixture
def sample(qtbot, window):
    """The Insights panel of the bundled sample image, shown at 1366x768."""
    window.resize(1366, 768)
    with qtbot.waitSignal(window.image_loaded, timeout=30_000) as loaded:
        window.open_sample()
    view = loaded.args[0]
    view.show_insights()
    qtbot.waitUntil(lambda: view.insights.treemap.isVisible() and view.insights.chart.isVisible())
    return view


def _archive(tmp_path, layers: int):
    """An image of ``layers`` layers, each with a file of its own size, and long build steps."""
    tars = [layer_tar([f(f"d{k % 7}/layer-{k}.bin", b"x" * (1000 * (k + 1)))]) for k in range(layers)]
    history = [{"created_by": f"/bin/sh -c apt-get install -y package-{k} " + "&& echo step " * 20} for k in range(layers)]
    path = tmp_path / f"layers-{layers}.tar"
    path.write_bytes(docker_archive(tars, history=history))
    src = open_source(str(path))
    return src, load_image(src, src.select())


def test_bar_labels_do_not_overlap_and_each_tells_its_size(sample):
    chart = sample.insights.chart
    labels = chart.label_rects()
    layers = sample.image.layers
    assert len(labels) == 2 * len(layers) == 8
    for a, b in itertools.combinations(labels, 2):
        assert not a.rect.intersects(b.rect), (a.text, b.text)
    fm = QFontMetricsF(chart.font())
    for label in labels:
        assert 0 <= label.rect.left() and label.rect.right() <= chart.width()
        assert fm.horizontalAdvance(label.text) <= label.rect.width() + 2, label.text  # elided to fit, not cut
    for k, layer in enumerate(layers):
        text = " ".join(label.text for label in labels if label.layer == k)
        assert human_size(layer.size) in text and text.startswith(f"{k}  ")
    assert "(524.3 kB wasted)" in " ".join(label.text for label in labels if label.layer == 1)
    assert "ADD file:" in labels[0].text  # the build step, without the shell's noise


def test_the_wasted_part_is_hatched_in_a_colour_no_layer_has(qtbot, sample):
    for dark in (False, True):
        waste = waste_colour(dark)
        assert all(layer_colour(k, dark) != waste for k in range(100))
    chart = sample.insights.chart
    picture = chart.grab().toImage()
    ratio = picture.devicePixelRatio()
    waste = waste_colour(chart.palette().color(chart.backgroundRole()).lightness() < 128)

    def colours_in(rect):
        return {picture.pixelColor(int(x * ratio), int(y * ratio)).rgb()
                for x in range(int(rect.left()) + 1, int(rect.right()) - 1)
                for y in range(int(rect.top()) + 1, int(rect.bottom()) - 1)}

    rows = chart._rows()
    assert waste.rgb() in colours_in(rows[1].waste)  # layer 1's wasted half-megabyte
    assert waste.rgb() not in colours_in(rows[0].bar)  # layer 0 has no waste


def test_sixty_layers_give_every_row_the_font_height_and_scroll(qtbot, tmp_path):
    from explorer.ui.insights_panel import InsightsPanel

    src, image = _archive(tmp_path, 60)
    with src:
        panel = InsightsPanel(image, TreeView(image.tree, None, MERGED).totals())
        qtbot.addWidget(panel)
        panel.resize(1200, 700)
        panel.show()
        qtbot.waitExposed(panel)
        chart = panel.chart
        fm = QFontMetricsF(chart.font())
        assert chart.height() >= chart.minimumSizeHint().height() >= 60 * fm.height()
        qtbot.waitUntil(lambda: panel.chart_scroll.verticalScrollBar().maximum() > 0)  # too tall to fit: it scrolls
        steps = [label for label in chart.label_rects() if label.text.startswith(f"{label.layer}  ")]
        assert len(steps) == 60
        for a, b in zip(steps, steps[1:]):
            assert b.rect.top() - a.rect.top() >= fm.height()
            assert a.rect.height() >= fm.height() - 1
        for a, b in itertools.combinations(chart.label_rects(), 2):
            assert not a.rect.intersects(b.rect)
        assert all(bar.height() >= fm.height() / 2 for bar in chart.bar_rects())


def test_two_layers_read_well_too(qtbot, tmp_path):
    src, image = _archive(tmp_path, 2)
    with src:
        chart = LayerChart()
        qtbot.addWidget(chart)
        chart.set_image(image)
        chart.resize(500, 300)
        labels = chart.label_rects()
        assert [label.layer for label in labels] == [0, 0, 1, 1]
        assert labels[0].text.startswith("0  RUN apt-get") and "…" in labels[0].text  # long steps elide in the middle
        assert chart.bar_rects()[1].width() > chart.bar_rects()[0].width()
        tip = chart.tooltip_at(chart.bar_rects()[1].center())
        assert "Layer 1" in tip and human_size(image.layers[1].size) in tip and "package-1" in tip
        chart.resize(chart.minimumSizeHint().width(), 300)  # as narrow as it goes: still apart, still inside
        labels = chart.label_rects()
        assert all(label.rect.right() <= chart.width() for label in labels)
        assert not any(a.rect.intersects(b.rect) for a, b in itertools.combinations(labels, 2))


def test_clicking_a_bar_shows_its_layer(qtbot, sample):
    chart = sample.insights.chart
    bar = chart.bar_rects()[1]
    with qtbot.waitSignal(chart.layer_clicked) as clicked:
        qtbot.mouseClick(chart, Qt.MouseButton.LeftButton, pos=bar.center().toPoint())
    assert clicked.args == [1]
    assert sample.layer == 1


def test_the_treemap_nests_folders(sample):
    treemap = sample.insights.treemap
    boxes = treemap.boxes
    folders = [b for b in boxes if b.kind == FOLDER_BOX]
    assert len(folders) > 1
    assert {"/bin", "/data", "/etc"} <= {b.path for b in folders}
    nested = [(outer, inner) for outer in folders for inner in boxes
              if inner is not outer and inner.depth > outer.depth and outer.rect.contains(inner.rect)]
    assert nested
    assert any(inner.kind == FOLDER_BOX for _, inner in nested)  # a folder inside a folder
    for b in boxes:  # nothing spills out of the map
        assert -0.5 <= b.x and b.x + b.w <= treemap.width() + 0.5 and -0.5 <= b.y and b.y + b.h <= treemap.height() + 0.5
    assert set(treemap.shown_layers()) == {0, 1, 2, 3}


def test_hover_on_a_file_tells_its_path_size_and_layer(qtbot, sample):
    treemap = sample.insights.treemap
    leaf = next(b for b in treemap.boxes if b.kind == FILE_BOX and b.path == "/data/copied.txt")
    centre = leaf.rect.center()
    assert treemap.box_at(centre) == leaf
    text = treemap.tooltip_at(centre)
    assert leaf.path in text and human_size(27) in text and "layer 3" in text
    local = centre.toPoint()
    QApplication.sendEvent(treemap, QHelpEvent(QEvent.Type.ToolTip, local, treemap.mapToGlobal(local)))
    qtbot.waitUntil(lambda: leaf.path in QToolTip.text())
    QToolTip.hideText()


def test_clicking_a_file_in_the_treemap_shows_it(qtbot, sample):
    treemap = sample.insights.treemap
    leaf = max((b for b in treemap.boxes if b.kind == FILE_BOX), key=lambda b: b.w * b.h)
    with qtbot.waitSignal(treemap.path_clicked) as clicked:
        qtbot.mouseClick(treemap, Qt.MouseButton.LeftButton, pos=leaf.rect.center().toPoint())
    assert clicked.args == [leaf.path] == ["/bin/busybox"]
    qtbot.waitUntil(lambda: sample.current_path() == "/bin/busybox")


def test_many_small_files_are_lumped_and_hover_finds_the_innermost_box(qtbot, tmp_path):
    files = [f(f"big/sub{k % 10}/file-{k}.txt", b"y" * (10 + k)) for k in range(3000)] + [f("huge.bin", b"z" * 400_000)]
    path = tmp_path / "many.tar"
    path.write_bytes(docker_archive([layer_tar(files)]))
    src = open_source(str(path))
    with src:
        image = load_image(src, src.select())
        treemap = Treemap()
        qtbot.addWidget(treemap)
        treemap.set_image(image, TreeView(image.tree, None, MERGED).totals())
        treemap.resize(300, 200)
        boxes = treemap.boxes
        assert len(boxes) < 3000 and any(b.kind == 2 for b in boxes)  # some went into a lump
        for b in boxes[::7]:
            if b.w >= 2 and b.h >= 2:
                found = treemap.box_at(QPointF(b.x + b.w / 2, b.y + b.h / 2))
                assert found is not None and found.depth >= b.depth
        assert treemap.box_at(QPointF(-5, 5)) is None
        assert not treemap.grab().isNull()


def test_the_treemap_is_laid_out_between_events_the_biggest_folders_first(qtbot, tmp_path, monkeypatch):
    from explorer.ui import charts

    # a big folder of 40 files and 30 small folders of 40 files each: with room to list 71
    # entries, the root's 31 and the big folder's 40 are listed, and no small folder is opened
    files = [f(f"big/file-{k}", b"b" * 50_000) for k in range(40)]
    files += [f(f"small{j:02}/file-{k}", b"s" * 100) for j in range(30) for k in range(40)]
    path = tmp_path / "folders.tar"
    path.write_bytes(docker_archive([layer_tar(files)]))
    monkeypatch.setattr(charts, "LIST_BUDGET", 71)
    with open_source(str(path)) as src:
        image = load_image(src, src.select())
        treemap = Treemap()
        qtbot.addWidget(treemap)
        treemap.set_image(image, TreeView(image.tree, None, MERGED).totals())
        treemap.resize(600, 400)
        treemap.show()
        qtbot.waitExposed(treemap)
        # until its boxes come, a hover finds none: nothing is laid out at the window's expense
        qtbot.waitUntil(lambda: treemap._laid_out_for == (600, 400))
        boxes = treemap._boxes
        assert any(b.path.startswith("/big/") for b in boxes)  # inside the biggest folder
        assert not any(b.path.startswith("/small") and b.depth > 0 for b in boxes)  # the budget was spent
        assert any(b.path.startswith("/small") and b.kind == FOLDER_BOX for b in boxes)  # shown, not opened
        inside = next(b for b in boxes if b.path.startswith("/big/"))
        assert treemap.box_at(inside.rect.center()) == inside
        assert "/big/" in treemap.tooltip_at(inside.rect.center())
        big = next(b for b in boxes if b.path == "/big")
        assert "in 40 entries" in treemap.tooltip_at(QPointF(big.x + 5, big.y + 5))


def test_a_treemap_laid_out_for_another_image_or_that_fails_is_not_shown(qtbot, tmp_path, monkeypatch):
    from explorer.ui import charts

    images = []
    for name in ("first", "second"):
        path = tmp_path / f"{name}.tar"
        path.write_bytes(docker_archive([layer_tar([f(f"{name}/file-{k}", b"x" * 1000 * (k + 1)) for k in range(5)])]))
        with open_source(str(path)) as src:
            images.append(load_image(src, src.select()))
    treemap = Treemap()
    qtbot.addWidget(treemap)
    treemap.resize(400, 300)
    treemap.set_image(images[0], TreeView(images[0].tree, None, MERGED).totals())
    treemap.show()
    qtbot.waitExposed(treemap)  # (its layout begun)
    treemap.set_image(images[1], TreeView(images[1].tree, None, MERGED).totals())  # before it ends
    qtbot.waitUntil(lambda: treemap._laid_out_for == (400, 300))
    assert {b.path.split("/")[1] for b in treemap._boxes} == {"second"}

    def broken(*args, **kwargs):  # (a damaged index file: a folder's chunk will not decode)
        raise ValueError("a folder's chunk is damaged")
        yield

    monkeypatch.setattr(charts, "lay_out_steps", broken)
    treemap.resize(420, 300)
    qtbot.waitUntil(lambda: treemap._laid_out_for == (420, 300))  # said, not asked again and again
    assert treemap._boxes == [] and "damaged" in treemap._failed
    assert not treemap.grab().isNull()


def _lightness(picture, rect):
    """(darkest, lightest) lightness of the pixels in ``rect`` of a grabbed picture."""
    ratio = picture.devicePixelRatio()
    values = [picture.pixelColor(int(x * ratio), int(y * ratio)).lightness()
              for x in range(int(rect.left()), int(rect.right())) for y in range(int(rect.top()), int(rect.bottom()))]
    return min(values), max(values)


def test_charts_follow_a_dark_palette(qtbot, sample):
    from PySide6.QtGui import QPalette

    chart, treemap = sample.insights.chart, sample.insights.treemap
    label = chart.label_rects()[0].rect
    folder = next(b for b in treemap.boxes if b.path == "/bin")
    band = QRectF(folder.x + folder.w - 12, folder.y + 2, 8, 6)  # the folder's name band, right of its name
    assert _lightness(chart.grab().toImage(), label)[0] < 100  # dark text ...
    assert _lightness(treemap.grab().toImage(), band)[0] > 128  # ... on light folders
    dark = QPalette(chart.palette())
    for role, code in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                       (QPalette.ColorRole.Base, "#171717"), (QPalette.ColorRole.Text, "#e8eaed")):
        dark.setColor(role, QColor(code))
    for widget in (treemap, chart):
        widget.setPalette(dark)
    picture = chart.grab().toImage()
    assert _lightness(picture, label)[1] > 180  # light text
    ratio = picture.devicePixelRatio()
    hatch = chart._rows()[1].waste
    colours = {picture.pixelColor(int(x * ratio), int(y * ratio)).rgb()
               for x in range(int(hatch.left()), int(hatch.right())) for y in range(int(hatch.top()), int(hatch.bottom()))}
    assert waste_colour(True).rgb() in colours
    assert _lightness(treemap.grab().toImage(), band)[1] < 128  # folders drawn anew, dark
