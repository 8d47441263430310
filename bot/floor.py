"""The least a command can cost before its attachments are seen.

`Quota.precheck` refuses a user who cannot afford even that before anything is
downloaded or decoded. Attachments are read every way they could turn out (each
an image or a video: a platform's hints can lie), and an image of any shape the
preparation can give it (an `auto` video size follows the first image's shape).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from bot import catalog, routing
from bot.config import Settings
from bot.errors import UserError
from bot.grammar import Command
from bot.model import MediaRef
from bot.quota import Floor

# The shapes a prepared image can take (`media.prepare_image`: sides multiples of 32,
# 64 to 1280 pixels); an `auto` video size follows the first image's shape.
_PREPARED_SIDES = range(64, 1281, 32)


def cheapest(command: Command, urls: Sequence[str], settings: Settings) -> Floor | None:
    """The least `command` can cost whatever its attachments at `urls` turn out to be:
    each an image or a video (platforms' hints can lie), images of any shape. Known
    before any download. None when no reading of them makes a request: building it
    after the download will say why."""
    costs: list[int] = []
    for images in range(len(urls) + 1):
        refs = [MediaRef(kind="image" if i < images else "video", url=url)
                for i, url in enumerate(urls)]
        try:
            request = routing.build_request(command, refs, settings)
        except UserError:
            continue
        if not images:
            costs.append(request.estimate.credits)
            continue
        # With an image, the estimate is redone for the prepared image's shape.
        endpoint, q = request.endpoint, settings.quota
        costs += [catalog.estimate(endpoint, request.input, q.credits_per_usd, settings.prices,
                                   input_aspect=aspect).credits
                  for aspect in _extreme_aspects(endpoint.nominal_size, endpoint.image_size)]
    if not costs:
        return None
    return Floor(min(costs), exact=min(costs) == max(costs))


@functools.cache
def _extreme_aspects(nominal: tuple[int, int], exact: tuple[int, int] | None) -> tuple[float, ...]:
    """The prepared-image shapes whose `auto` video sizes have the fewest and most pixels
    (prices rise with pixels, so the cheapest and dearest estimates lie there)."""
    if exact is not None:
        return (exact[0] / exact[1],)

    def pixels(aspect: float) -> int:
        width, height = catalog.auto_size(aspect, nominal)
        return width * height

    aspects = {w / h for w in _PREPARED_SIDES for h in _PREPARED_SIDES}
    return min(aspects, key=pixels), max(aspects, key=pixels)
