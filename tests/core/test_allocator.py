"""core.allocator: the cap on glibc's heaps is really set where the C library is glibc."""

from __future__ import annotations

import platform

import pytest

from bertless.core.allocator import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_cap_is_accepted_by_glibc():
    assert limit_malloc_arenas() is True
