"""Synthetic B2B marketplace with ground truth: landing files for the pipeline, truth for tests.

    from synthetic import MarketplaceParams, write_marketplace
    summary = write_marketplace(Path("data"), MarketplaceParams(suppliers=200, days=365, seed=1))
"""

from synthetic.generate import write_marketplace
from synthetic.params import FILE_FORMATS, MarketplaceParams

__all__ = ["FILE_FORMATS", "MarketplaceParams", "write_marketplace"]
