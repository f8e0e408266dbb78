import pytest

from dfbench.benchmark.errors import ConfigError
from dfbench.benchmark.registry import Registry


class Base:
    pass


class Child(Base):
    pass


def test_register_get_list_and_duplicates() -> None:
    reg: Registry[type[Base]] = Registry("widget", base=Base)
    reg.register("child", Child, description="a child")
    assert reg.get("child") is Child
    assert reg.names() == ["child"] and "child" in reg and len(reg) == 1
    assert reg.meta("child") == {"description": "a child"}
    with pytest.raises(ValueError, match="already registered"):
        reg.register("child", Child)


def test_unknown_name_suggests_close_matches() -> None:
    reg: Registry[type[Base]] = Registry("widget", base=Base)
    reg.register("two_gen_bat", Child)
    with pytest.raises(ConfigError, match="Did you mean two_gen_bat"):
        reg.get("two_gen_bta")


def test_base_class_is_checked_eagerly_and_lazily() -> None:
    reg: Registry = Registry("widget", base=Base)
    with pytest.raises(TypeError):
        reg.register("bad", int)
    reg.register("lazy", "collections:OrderedDict")  # resolved on first use
    with pytest.raises(TypeError):
        reg.get("lazy")
    ok: Registry = Registry("thing")
    ok.register("od", "collections:OrderedDict")
    from collections import OrderedDict

    assert ok.get("od") is OrderedDict
