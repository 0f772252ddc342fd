from cvkit.datasets import load_photo
from cvkit.widgets.photos import PhotoBrowser


def test_browser_follows_the_dropdown():
    browser = PhotoBrowser("astronaut")
    assert browser.photo.name == "astronaut"
    browser.choice.value = "coffee"             # fires the observer, as a click would
    assert browser.photo.name == "coffee"
    ax = browser.figure.figure.axes[0]
    assert len(ax.patches) == len(load_photo("coffee").labels)
    assert len(ax.texts) == len(ax.patches)
    browser.show_labels.value = False
    assert len(browser.figure.figure.axes[0].texts) == 0
