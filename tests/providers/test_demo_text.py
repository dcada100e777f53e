"""The demo draws the prompt's quoted text, now and then with one deliberate typo."""

from __future__ import annotations

from providers.base import ImageRequest, Target
from providers.demo import demo_text, render_demo

TARGET = Target("gpt-image-2", "GPT-Image 2", "gpt-image-2")
PROMPT = 'a neon sign that reads "OPEN 24/7" and a menu titled “Daily Specials”'


def test_no_quotes_no_sign() -> None:
    assert demo_text(TARGET, ImageRequest("a fox at dawn")) == ()


def test_the_text_is_the_same_for_the_same_seed() -> None:
    for seed in range(5):
        request = ImageRequest(PROMPT, seed=seed)
        assert demo_text(TARGET, request) == demo_text(TARGET, request)
        assert render_demo(TARGET, request) == render_demo(TARGET, request)


def test_some_seeds_draw_a_single_typo_and_others_draw_it_right() -> None:
    wanted = ("OPEN 24/7", "Daily Specials")
    drawn = [demo_text(TARGET, ImageRequest(PROMPT, seed=seed)) for seed in range(30)]
    assert wanted in drawn
    typos = [d for d in drawn if d != wanted]
    assert typos, "a third of the signs carry a typo"
    for texts in typos:
        changed = [
            sum(a != b for a, b in zip(got, want, strict=True))
            for got, want in zip(texts, wanted, strict=True)
        ]
        assert sorted(changed) == [0, 1]
