"""crypto-assets: a Dagster asset graph of crypto market, news, social, macro and on-chain data.

Importing this package is cheap: it imports neither Dagster, torch nor transformers. The
Dagster definitions are built only when `crypto_assets.definitions` is imported.
"""


# The implementation lives in `crypto_assets.loading`, not in a module named `load`: importing a
# submodule `crypto_assets.load` would replace this function with the module on the package.
def load(asset, start=None, end=None, **kwargs):
    """`crypto_assets.loading.load`: rows of an asset from the configured warehouse (see there)."""
    from crypto_assets.loading import load as _load

    return _load(asset, start, end, **kwargs)


__all__ = ["load"]
