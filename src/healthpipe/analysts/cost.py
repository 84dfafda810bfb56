"""Cost accounting: tokens times the price table (USD per 1,000 tokens)."""

from __future__ import annotations

from healthpipe.domain.insights import Usage

Prices = tuple[float, float]  # (input, output) USD per 1,000 tokens


def usage_with_cost(
    input_tokens: int, output_tokens: int, prices: Prices, *, estimated: bool = False
) -> Usage:
    price_in, price_out = prices
    cost = input_tokens / 1000.0 * price_in + output_tokens / 1000.0 * price_out
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=round(cost, 8),
        estimated=estimated,
    )
