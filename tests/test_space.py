"""The unit-cube maps: closed-form quantiles, round trips, validation messages, files."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sturgeon import Choice, Float, Int, Space, SpaceError
from sturgeon.samplers import RandomSampler
from sturgeon.trial import Direction


def draws(param, n=20_000, seed=0):
    space = Space(x=param)
    sampler = RandomSampler(seed=seed)
    return np.array([sampler.sample(space, i, [], Direction.MINIMIZE)["x"] for i in range(n)])


def test_reverse_log_median_is_099_and_half_the_mass_is_below_it():
    x = draws(Float(0.9, 0.999, scale="reverse_log"))
    # the sample median's spread is ~0.0035 on the unit scale (1 sigma at n = 20,000); allow 0.01 of it,
    # i.e. 1 - beta within a factor 100**0.01 = 1.047 of 0.01
    assert np.median(x) == pytest.approx(0.99, abs=5e-4)
    assert (x < 0.99).mean() == pytest.approx(0.5, abs=0.01)


def test_reverse_log_is_log_uniform_on_one_minus_beta():
    # each decade of 1 - beta ([1e-3, 1e-2], [1e-2, 1e-1]) gets half; each half-decade a quarter
    x = draws(Float(0.9, 0.999, scale="reverse_log"))
    edges = 1 - np.array([1e-1, 10**-1.5, 1e-2, 10**-2.5, 1e-3])
    counts = np.histogram(x, bins=edges)[0] / len(x)
    assert counts == pytest.approx([0.25] * 4, abs=0.01)


def test_log_scale_gives_each_decade_a_quarter():
    x = draws(Float(1e-4, 1, scale="log"))
    counts = np.histogram(np.log10(x), bins=[-4, -3, -2, -1, 0])[0] / len(x)
    assert counts == pytest.approx([0.25] * 4, abs=0.01)


def test_closed_form_points():
    beta = Float(0.9, 0.999, scale="reverse_log")
    assert beta.from_unit(0.0) == 0.9 and beta.from_unit(1.0) == 0.999
    assert beta.from_unit(0.5) == pytest.approx(0.99, abs=1e-12)
    assert beta.from_unit(1 / 3) == pytest.approx(1 - 0.1 * 0.01 ** (1 / 3), abs=1e-12)
    lr = Float(1e-4, 1, scale="log")
    assert lr.from_unit(0.25) == pytest.approx(1e-3, rel=1e-12)
    assert Float(-1, 3).from_unit(0.75) == 2.0


def test_reverse_log_is_not_kerastuners_mirrored_curve():
    # KerasTuner's reverse_log lo + hi - lo*(hi/lo)^(1-u) puts ~90% of the mass below 0.99; ours puts 50%.
    u = np.random.default_rng(0).random(20_000)
    keras = 0.9 + 0.999 - 0.9 * (0.999 / 0.9) ** (1 - u)
    assert (keras < 0.99).mean() == pytest.approx(0.90, abs=0.01)
    assert (draws(Float(0.9, 0.999, scale="reverse_log")) < 0.99).mean() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    "param",
    [Float(-3.0, 7.5), Float(1e-5, 10.0, scale="log"), Float(0.9, 0.9999, scale="reverse_log"),
     Float(0.0, 0.99, scale="reverse_log")],
    ids=["linear", "log", "reverse_log", "reverse_log-from-0"],
)
@given(u=st.floats(0.0, 1.0))
def test_continuous_round_trip(param, u):
    assert param.to_unit(param.from_unit(u)) == pytest.approx(u, abs=1e-9)
    assert param.lo <= param.from_unit(u) <= param.hi


@given(lo=st.integers(1, 50), span=st.integers(1, 200), log=st.booleans(), data=st.data())
def test_int_value_round_trip(lo, span, log, data):
    p = Int(lo, lo + span, scale="log" if log else "linear")
    v = data.draw(st.integers(lo, lo + span))
    assert p.from_unit(p.to_unit(v)) == v


@given(values=st.lists(st.one_of(st.integers(-100, 100), st.text(min_size=1, max_size=5)), min_size=1, max_size=8,
                       unique=True))
def test_choice_value_round_trip(values):
    if any(isinstance(v, str) for v in values) and any(isinstance(v, int) for v in values):
        values = [str(v) for v in values]
        values = list(dict.fromkeys(values))
    p = Choice(values)
    for v in values:
        assert p.from_unit(p.to_unit(v)) == v


def test_int_linear_is_uniform_over_values():
    x = draws(Int(1, 4))
    counts = np.bincount(x.astype(int), minlength=5)[1:] / len(x)
    assert counts == pytest.approx([0.25] * 4, abs=0.01)


def test_choice_orders_numbers_and_keeps_strings_in_order():
    assert Choice([128, 32, 64]).values == [32, 64, 128] and Choice([128, 32]).ordered
    c = Choice(["tanh", "relu"])
    assert c.values == ["tanh", "relu"] and not c.ordered


def test_stepped_float_lands_on_the_grid():
    p = Float(0.0, 0.5, step=0.1)
    assert {round(p.from_unit(u), 12) for u in np.linspace(0, 1, 101)} == {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Float(1.0, 1.0, name="lr"), "The 'lr' parameter must have lo < hi. Got (1.0, 1.0) instead."),
        (lambda: Float(0.0, 1.0, scale="log", name="lr"),
         "The 'lr' parameter has scale 'log', so lo must be > 0. Got 0.0 instead."),
        (lambda: Float(0.9, 1.0, scale="reverse_log", name="beta"),
         "The 'beta' parameter has scale 'reverse_log' (log-uniform on 1 - x), so hi must be < 1. Got 1.0 instead."),
        (lambda: Choice([], name="act"), "The 'act' parameter must have a non-empty list of values. Got [] instead."),
        (lambda: Float(0.0, 1.0, step=0.3, name="p"),
         "The 'p' parameter must have a step that divides hi - lo = 1. Got 0.3 instead."),
        (lambda: Float(0.0, 1.0, scale="cubic", name="p"),
         "The 'scale' of parameter 'p' must be one of linear, log, reverse_log. Got 'cubic' instead."),
        (lambda: Int(1, 10, scale="reverse_log", name="units"),
         "The 'units' parameter cannot have scale 'reverse_log' (it is for averaging betas < 1). "
         "Got 'reverse_log' instead."),
        (lambda: Int(1.5, 10, name="units"), "The 'units' parameter must have integer bounds. Got (1.5, 10) instead."),
        (lambda: Choice(["a", "a"], name="act"),
         "The 'act' parameter must have distinct values. Got ['a', 'a'] instead."),
    ],
)
def test_invalid_parameters_are_refused_with_one_line(make, message):
    with pytest.raises(SpaceError) as e:
        make()
    assert str(e.value) == message


def test_space_validate_names_the_problem():
    space = Space(lr=Float(1e-4, 1, scale="log"), act=Choice(["relu", "tanh"]))
    assert space.validate({"lr": 0.01, "act": "relu"}) == {"lr": 0.01, "act": "relu"}
    with pytest.raises(SpaceError, match=r"^The 'lr' parameter must be in \[0.0001, 1\]. Got 2 instead.$"):
        space.validate({"lr": 2, "act": "relu"})
    with pytest.raises(SpaceError, match=r"^Unknown parameter 'lrr'. Known: lr, act.$"):
        space.validate({"lrr": 0.1, "act": "relu"})
    with pytest.raises(SpaceError, match=r"must be one of \['relu', 'tanh'\]. Got 'elu' instead."):
        space.validate({"lr": 0.1, "act": "elu"})


def test_restrict_zooms_on_the_same_scale():
    space = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
                  units=Int(1, 100), act=Choice(["relu", "tanh", "elu"]), bs=Choice([16, 32, 64, 128]))
    sub = space.restrict({"lr": (0.25, 0.5), "beta": (0.5, 1.0), "units": (0.0, 0.1), "bs": (0.3, 0.6)},
                         {"act": ["elu", "relu"]})
    assert sub["lr"].lo == pytest.approx(1e-3) and sub["lr"].hi == pytest.approx(1e-2)
    assert sub["beta"].lo == pytest.approx(0.99) and sub["beta"].hi == 0.999
    assert (sub["units"].lo, sub["units"].hi) == (1, 10)
    assert sub["act"].values == ["relu", "elu"] and sub["bs"].values == [32, 64]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_space_file_round_trip(tmp_path, suffix):
    space = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"),
                  units=Int(16, 512, scale="log"), p=Float(0, 0.5, step=0.1), act=Choice(["relu", "tanh"]),
                  bs=Choice([32, 64]))
    path = tmp_path / f"space{suffix}"
    space.save(path)
    assert Space.load(path) == space


def test_space_file_errors(tmp_path):
    with pytest.raises(SpaceError, match="^The space file does not exist: '.*nope.toml'.$"):
        Space.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": {"type": "float", "lo": 1, "hi": 0.1, "scale": "log"}}))
    with pytest.raises(SpaceError, match=r"^The 'lr' parameter must have lo < hi. Got \(1, 0.1\) instead.$"):
        Space.load(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[space]\nlr = { type = "float", low = 0.1, hi = 1.0 }\n')
    with pytest.raises(SpaceError, match=r"^Unknown key 'lr.low' for a float parameter. Known: hi, lo, scale, step.$"):
        Space.load(typo)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(SpaceError, match=r"^The space file '.*list.json' must hold a table of parameters. Got \[1, 2\] "
                       r"instead.$"):
        Space.load(listed)
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[space]\nact = ["caf\xe9"]\n'.encode("latin-1"))
    with pytest.raises(SpaceError, match=r"^The space file '.*latin.toml' cannot be read \(it is not UTF-8 text\).$"):
        Space.load(latin)
    with pytest.raises(SpaceError, match=r"^The space file '.*' cannot be read \(.+\).$"):
        Space.load(tmp_path)


def test_from_unit_never_leaves_the_bounds():
    for p in (Float(1e-7, 1e3, scale="log"), Float(0.5, 0.99999, scale="reverse_log")):
        assert p.from_unit(0.0) == p.lo and p.from_unit(1.0) == p.hi
        assert p.from_unit(-0.5) == p.lo and p.from_unit(1.5) == p.hi
        assert not math.isnan(p.to_unit(p.hi))


def test_one_param_object_can_serve_two_names():
    f = Float(1e-4, 1, scale="log")
    space = Space(lr_enc=f, lr_dec=f)
    assert space.from_unit([0.25, 0.5]) == pytest.approx({"lr_enc": 1e-3, "lr_dec": 1e-2})


def test_non_numeric_bounds_name_the_parameter():
    with pytest.raises(SpaceError, match=r"^The 'lr.lo' key must be a number. Got 'abc' instead.$"):
        Space.from_dict({"lr": {"type": "float", "lo": "abc", "hi": 1.0}})
    with pytest.raises(SpaceError, match=r"^The 'lr' parameter must have numbers for lo, hi and step. Got 'abc' "):
        Float("abc", 1.0, name="lr")


@pytest.mark.parametrize(
    "spec, message",
    [
        # a key typo reached the constructor: "Float.__init__() got an unexpected keyword argument 'scael'"
        ({"type": "float", "lo": 1e-4, "hi": 1, "scael": "log"},
         "Unknown key 'lr.scael' for a float parameter. Known: hi, lo, scale, step."),
        ({"type": "int", "lo": 1, "hi": 10, "step": 2},
         "Unknown key 'lr.step' for an int parameter. Known: hi, lo, scale."),
        ({"type": "choice", "values": [1, 2], "lo": 1}, "Unknown key 'lr.lo' for a choice parameter. Known: values."),
        ({"type": "float", "hi": 1}, "The 'lr.lo' key is missing: a float parameter needs lo and hi."),
        ({"type": "choice"}, "The 'lr.values' key is missing: a choice parameter needs values."),
        ({"type": ["float"], "lo": 0, "hi": 1},
         "The 'lr.type' key must be one of float, int, choice. Got ['float'] instead."),
        ({"type": "floot", "lo": 0, "hi": 1},
         "The 'lr.type' key must be one of float, int, choice. Got 'floot' instead."),
        ({"lo": "a", "hi": 1}, "The 'lr.lo' key must be a number. Got 'a' instead."),
        ({"lo": True, "hi": 2}, "The 'lr.lo' key must be a number. Got True instead."),
        ({"lo": 0, "hi": math.inf}, "The 'lr.hi' key must be a finite number. Got inf instead."),
        ({"lo": 0, "hi": 10**400}, f"The 'lr.hi' key must be a finite number. Got {10**400} instead."),
        ({"lo": 0, "hi": 1, "step": math.nan}, "The 'lr.step' key must be a finite number. Got nan instead."),
        ({"lo": 0, "hi": 1, "scale": "lgo"},
         "The 'lr.scale' key must be one of linear, log, reverse_log. Got 'lgo' instead."),
        ({"lo": 0, "hi": 1, "scale": ["log"]},
         "The 'lr.scale' key must be one of linear, log, reverse_log. Got ['log'] instead."),
        ({"type": "int", "lo": 1.5, "hi": 8}, "The 'lr.lo' key must be an integer. Got 1.5 instead."),
        ({"type": "int", "lo": 1, "hi": "8"}, "The 'lr.hi' key must be an integer. Got '8' instead."),
        ({"type": "int", "lo": False, "hi": 8}, "The 'lr.lo' key must be an integer. Got False instead."),
        ({"values": 3}, "The 'lr.values' key must be a non-empty list of choices. Got 3 instead."),
        ({"values": "relu"}, "The 'lr.values' key must be a non-empty list of choices. Got 'relu' instead."),
        ({"values": {"a": 1}}, "The 'lr.values' key must be a non-empty list of choices. Got {'a': 1} instead."),
        # a bound whose range overflows gave "cannot convert float NaN to integer" later, without the key
        ({"lo": -1e308, "hi": 1e308},
         "The 'lr' parameter must have bounds whose difference hi - lo is a finite number. "
         "Got (-1e+308, 1e+308) instead."),
        ({"lo": 1e-308, "hi": 1e308, "scale": "log"},
         "The 'lr' parameter has scale 'log', so hi / lo must be a finite number. Got (1e-308, 1e+308) instead."),
        ({"lo": 5e-324, "hi": 1, "scale": "log"},
         "The 'lr' parameter has scale 'log', so hi / lo must be a finite number. Got (5e-324, 1) instead."),
        ({"lo": 0, "hi": 1, "step": 1e-300},
         "The 'lr' parameter must have at most 2**53 steps in hi - lo = 1. Got 1e-300 instead."),
        ({"type": "int", "lo": 0, "hi": 1e300},
         "The 'lr' parameter must have integer bounds between -2**53 and 2**53. Got (0, 1e+300) instead."),
        ({"values": [1, 1.0]}, "The 'lr' parameter must have distinct values. Got [1, 1.0] instead."),
        ({"values": [math.nan, 1]}, "The 'lr' parameter must have values that are not NaN. Got [nan, 1] instead."),
        ("log", "The 'lr' parameter must be a table (type, lo, hi, scale) or a list of choices. Got 'log' instead."),
    ],
)
def test_space_descriptions_are_checked_key_by_key(spec, message):
    with pytest.raises(SpaceError) as e:
        Space.from_dict({"lr": spec})
    assert str(e.value) == message


def test_constructors_refuse_what_would_map_to_nan_or_a_skewed_distribution():
    for make, message in [
        (lambda: Float(0, 1, step=math.inf, name="p"), "The 'p' parameter must have a finite step. Got inf instead."),
        (lambda: Float(0, 1, step=True, name="p"),
         "The 'p' parameter must have numbers for lo, hi and step. Got True instead."),
        (lambda: Float(False, 1, name="p"),
         "The 'p' parameter must have numbers for lo, hi and step. Got False instead."),
        (lambda: Float(0, 10**400, name="p"),
         f"The 'p' parameter must have finite bounds. Got (0, {10**400}) instead."),
        (lambda: Int(True, 3, name="n"), "The 'n' parameter must have integer bounds. Got (True, 3) instead."),
        (lambda: Int(0, 2**53 + 1, name="n"),
         f"The 'n' parameter must have integer bounds between -2**53 and 2**53. Got (0, {2**53 + 1}) instead."),
        (lambda: Choice([32, 64, 32.0], name="bs"),
         "The 'bs' parameter must have distinct values. Got [32, 64, 32.0] instead."),
    ]:
        with pytest.raises(SpaceError) as e:
            make()
        assert str(e.value) == message
    # the largest ranges that are still fine map both ends and back
    for p in (Float(-1e307, 1e307), Float(1e-150, 1e150, scale="log"), Int(-(2**53), 2**53)):
        assert p.from_unit(0.0) == p.lo and p.from_unit(1.0) == p.hi and p.to_unit(p.hi) == 1.0
    # True and 1 stay different choices (booleans are not numbers here), and each value owns one cell
    assert Choice([True, 1]).values == [True, 1]
    assert Choice([1, 2.5]).values == [1, 2.5]


def test_a_unit_point_of_the_wrong_length_is_refused():
    space = Space(x=Float(0, 1), y=Float(0, 1))
    with pytest.raises(SpaceError, match=r"^The unit point must have 2 coordinates, one per parameter. Got 1 "):
        space.from_unit([0.5])
