"""Pages keep their inputs inside their cards at a common desktop width (1,400 px)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# Each visible form control that lies (even partly) outside the card that holds it.
OUTSIDE_THEIR_CARDS = """
() => [...document.querySelectorAll('.card input, .card textarea, .card select, .card button')]
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .map(el => {
    const card = el.closest('.card').getBoundingClientRect();
    const box = el.getBoundingClientRect();
    return {name: el.name || el.id || el.type, left: box.left - card.left, right: card.right - box.right,
            box: [box.left, box.right], card: [card.left, card.right]};
  })
  .filter(item => item.left < -0.5 || item.right < -0.5)
"""


def test_add_page_inputs_stay_inside_their_cards_at_1400_px(operator_page, live_stack):
    page = operator_page
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(live_stack.url + "/corpus/add/")
    assert page.locator(".card input[name=q]").count() == 1 and page.locator(".card #id_path").count() == 1
    assert page.evaluate(OUTSIDE_THEIR_CARDS) == []
    # And no card makes the page scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
