"""notebooks/explore_features.ipynb runs top to bottom on a demo warehouse and draws its plot.

The warehouse is built here like `make demo` builds it: coin_universe, then price_observations,
ohlcv_bars and technical_indicators over the demo hours in replay mode (recorded real
CoinGecko payloads), into a temporary SQLite file that the notebook's kernel reads through
CRYPTO_WAREHOUSE_URL.
"""

import pytest

from pathlib import Path

import dagster as dg
import nbformat
from nbclient import NotebookClient

from crypto_assets.assets.enrich.indicators import technical_indicators
from crypto_assets.assets.ingest.prices import ohlcv_bars, price_observations
from crypto_assets.assets.reference import coin_universe
from crypto_assets.demo import DEMO_HOURS
from crypto_assets.sources.coingecko import CoinGecko
from crypto_assets.warehouse.resource import WarehouseIOManager, WarehouseResource

pytestmark = pytest.mark.slow  # every test here starts a server, a daemon or a Dagster run of seconds

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "explore_features.ipynb"
ASSETS = [coin_universe, price_observations, ohlcv_bars, technical_indicators]
ASSET_TABLES = ("price_observations", "ohlcv_bars", "technical_indicators")


def build_demo_warehouse(url: str) -> None:
    resources = {"io_manager": WarehouseIOManager(url=url), "warehouse": WarehouseResource(url=url),
                 "coingecko": CoinGecko(mode="replay")}
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize(ASSETS, selection=["coin_universe"], resources=resources, instance=instance)
    dg.materialize(ASSETS, selection=["price_observations", "ohlcv_bars", "technical_indicators"],
                   resources=resources, instance=instance,
                   tags={"dagster/asset_partition_range_start": DEMO_HOURS[0],
                         "dagster/asset_partition_range_end": DEMO_HOURS[1]})


def test_notebook_runs_on_the_demo_warehouse_and_plots(tmp_path, monkeypatch):
    url = f"delta://{tmp_path / 'warehouse'}"  # the embedded default's kind
    build_demo_warehouse(url)
    monkeypatch.setenv("CRYPTO_WAREHOUSE_URL", url)  # the kernel inherits this environment
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any cell error

    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    counts = {line.split(":")[0]: int(line.split(":")[1].split()[0])
              for line in text.splitlines() if line.split(":")[0] in ASSET_TABLES}
    assert set(counts) == set(ASSET_TABLES) and all(n > 0 for n in counts.values()), text
    assert "ml_features: no table in this warehouse yet" in text  # guarded, not a crash
    images = [out for out in outputs if out.output_type == "display_data" and "image/png" in out.data]
    assert len(images) == 1 and len(images[0].data["image/png"]) > 10_000  # a real figure, not an empty canvas

