"""Search research: the micro-moments in the queries people already send you.

Load Search Console (UI export, bulk export tables) and Bing Webmaster Tools exports
(`store.search_load.load_search_files`), classify each query with its landing page
(`classify_search`, cached), and measure each moment: impressions, clicks, CTR, position, shares,
weekly trend, device and country splits (`analysis`), then the opportunities (`opportunities`):
CTR below the site's own expected-CTR curve, question / long-tail / voice shares, content gaps,
cannibalisation. `analyse_search` runs it all and returns a `SeoResult`.
"""

from __future__ import annotations

from micromoments.seo.classify import classify_search
from micromoments.seo.opportunities import Thresholds
from micromoments.seo.pages import PageKinds
from micromoments.seo.run import SeoResult, analyse_search, has_search_data, store_has_search_data

__all__ = ["PageKinds", "SeoResult", "Thresholds", "analyse_search", "classify_search", "has_search_data",
           "store_has_search_data"]
