"""Where the fixtures live, and a shorthand to parse one of them."""

from pathlib import Path

import pytest

from faq.importers import Row, RowError, parse_file
from faq.importers.formats import Limits

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SAMPLES = FIXTURES / "samples"
HOSTILE = FIXTURES / "hostile"


@pytest.fixture
def parse_sample():  # type: ignore[no-untyped-def]
    def parse(name: str, **limits: int) -> tuple[list[Row], list[RowError]]:
        return parse_file(name, (SAMPLES / name).read_bytes(), limits=Limits(**limits))

    return parse
