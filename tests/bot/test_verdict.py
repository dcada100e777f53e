"""Verdict properties: cost follows price, winners follow dots, weights drive best first test."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from bot.catalog import Catalog, load_catalog
from bot.verdict import TIE, build_verdict, cost_dots, dots


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_dots_render_filled_and_empty() -> None:
    assert dots(5) == "●●●●●" and dots(3) == "●●●○○" and dots(0) == "○○○○○"


@pytest.mark.parametrize("a", [1, 5, 8, 12, 22, 40, 300])
@pytest.mark.parametrize("b", [1, 5, 8, 12, 22, 40, 300])
def test_cheaper_model_never_has_fewer_cost_dots(a: int, b: int) -> None:
    if a < b:
        assert cost_dots(a, 8) >= cost_dots(b, 8)


def test_cheaper_model_never_loses_cost_efficiency(catalog: Catalog) -> None:
    for ids in itertools.permutations(catalog.models, 2):
        models = [catalog.model(i) for i in ids]
        for uc in catalog.use_cases.values():
            verdict = build_verdict(catalog, models, uc)
            row = verdict.row("cost_efficiency")
            prices = verdict.prices
            if row.winner != TIE:
                winner = verdict.labels.index(row.winner)
                assert prices[winner] == min(prices)
            cheaper = prices.index(min(prices))
            assert row.scores[cheaper] == max(row.scores)


def test_winner_column_always_agrees_with_dots(catalog: Catalog) -> None:
    for n in (2, 3, 4):
        for ids in itertools.combinations(catalog.models, n):
            models = [catalog.model(i) for i in ids]
            for uc in catalog.use_cases.values():
                for row in build_verdict(catalog, models, uc).rows:
                    top = max(row.scores)
                    leaders = [i for i, s in enumerate(row.scores) if s == top]
                    expected = TIE if len(leaders) > 1 else models[leaders[0]].name
                    assert row.winner == expected, (ids, uc.id, row)


def test_portrait_page_rows_for_the_seed_models(catalog: Catalog) -> None:
    models = [catalog.model("gpt-image-2"), catalog.model("nano-banana-pro")]
    verdict = build_verdict(catalog, models, catalog.use_case("portrait"))
    assert verdict.row("realism").winner == TIE
    assert verdict.row("editing_flexibility").winner == "GPT-Image 2"
    # The page's own table let the dearer model win cost efficiency; ours follows price.
    assert verdict.row("cost_efficiency").scores == (4, 3)
    assert verdict.row("cost_efficiency").winner == "GPT-Image 2"
    # Read off the rows: both score 5/5 on polish, so neither "is better for polished assets".
    assert verdict.short_answer == (
        "Short answer: GPT-Image 2 leads on editing flexibility and cost efficiency; "
        "they tie on realism, text accuracy, final polish, and consistency."
    )
    assert verdict.avoid == (
        (
            "Nano Banana Pro",
            "Avoid Nano Banana Pro if you need editing and reference-driven iteration: "
            "GPT-Image 2 rates 5/5 against its 4/5 (editorial).",
        ),
    )
    assert verdict.pick_sentence.startswith("For portrait,")
    assert [n.need for n in verdict.needs][-1] == "Portrait specifically"


def test_best_first_test_is_the_weighted_score(catalog: Catalog) -> None:
    models = [catalog.model("gpt-image-2"), catalog.model("nano-banana-2")]
    poster = catalog.use_case("poster")
    verdict = build_verdict(catalog, models, poster)
    for i, model in enumerate(models):
        cost = verdict.row("cost_efficiency").scores[i]
        total = sum(poster.weights.values())
        expected = (
            sum(
                w * (cost if cid == "cost_efficiency" else model.rating(cid, "poster"))
                for cid, w in poster.weights.items()
            )
            / total
        )
        assert verdict.weighted[i] == pytest.approx(expected)
        assert verdict.row("best_first_test").scores[i] == int(expected + 0.5)


def test_changing_weights_changes_best_first_test_as_expected(catalog: Catalog) -> None:
    models = [catalog.model("gpt-image-2"), catalog.model("nano-banana-pro")]
    base = catalog.use_case("portrait")
    # Only cost matters: the cheaper GPT-Image 2 must win best first test.
    cost_only = dataclasses.replace(base, weights={"cost_efficiency": 5})
    verdict = build_verdict(catalog, models, cost_only)
    assert verdict.row("best_first_test").winner == "GPT-Image 2"
    assert "leads on cost efficiency, which matters most for portrait" in verdict.pick_sentence
    # Only realism matters (both 5/5): a tie, and the sentence must not invent a winner.
    realism_only = dataclasses.replace(base, weights={"realism": 5})
    verdict = build_verdict(catalog, models, realism_only)
    assert verdict.row("best_first_test").winner == TIE
    assert "start level" in verdict.pick_sentence
    assert "GPT-Image 2 is the cheaper first test at 11 credits" in verdict.pick_sentence


def test_higher_price_override_can_flip_cost_efficiency(catalog: Catalog) -> None:
    models = [catalog.model("gpt-image-2"), catalog.model("nano-banana-pro")]
    verdict = build_verdict(catalog, models, catalog.use_case("portrait"), prices=[64, 22])
    assert verdict.row("cost_efficiency").winner == "Nano Banana Pro"


def test_demo_labels_reach_every_line(catalog: Catalog) -> None:
    models = [catalog.model("gpt-image-2"), catalog.model("nano-banana-pro")]
    labels = ["GPT-Image 2 · demo", "Nano Banana Pro · demo"]
    verdict = build_verdict(catalog, models, catalog.use_case("product"), labels=labels)
    assert "GPT-Image 2 · demo leads on" in verdict.short_answer
    winners = {row.winner for row in verdict.rows}
    assert winners <= {TIE, *labels}
    assert all(label.endswith("· demo") for label, _ in verdict.strengths)


def test_four_models_feature_table_and_needs(catalog: Catalog) -> None:
    models = [catalog.model(i) for i in catalog.models]
    verdict = build_verdict(catalog, models, catalog.use_case("character"))
    assert all(len(f.values) == 4 for f in verdict.features)
    prices = next(f for f in verdict.features if f.feature == "Starting price")
    assert prices.values[:2] == ("8 credits", "22 credits")
    assert len(verdict.needs) == 7
    assert "all of them" in verdict.pick_sentence
