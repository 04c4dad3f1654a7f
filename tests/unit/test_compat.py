"""The compatibility resolver: framework x Python x CUDA x base image, every choice with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.compat.resolver import Resolution, compat_data, resolve
from dockyard.errors import CompatError

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
LOCAL_SLIM = "dockyard/python:3.11-slim"
LOCAL_BUILD = "dockyard/python:3.11-build"


def _resolve(**overrides: Any) -> Resolution:
    args: dict[str, Any] = dict(
        python="3.11", framework=None, framework_version=None, gpu=False, cuda=None, devel=False, base_image=None
    )
    args.update(overrides)
    return resolve(**args)


def _compat_error(**overrides: Any) -> CompatError:
    with pytest.raises(CompatError) as info:
        _resolve(**overrides)
    return info.value


def _choice(res: Resolution, what: str) -> str:
    values = [c.value for c in res.choices if c.what == what]
    assert values, f"no {what!r} choice in {res.choices}"
    return values[-1]


# (case, resolve kwargs, words the problem must contain, words the fix must contain)
IMPOSSIBLE = [
    ("tensorflow 2.21 on python 3.8", dict(python="3.8", framework="tensorflow", framework_version="2.21.0"), ["3.8"], ['"3.10"']),
    ("python 3.9 unsupported", dict(python="3.9"), ["Python 3.9", "not supported"], ['"3.10"']),
    ("python 3.14 unsupported", dict(python="3.14"), ["Python 3.14"], ['"3.13"']),
    (
        "tensorflow 2.15 on python 3.13",
        dict(python="3.13", framework="tensorflow", framework_version="2.15.1"),
        ["tensorflow 2.15", "3.9 to 3.11"],
        ['"3.11"', "tensorflow 2.21"],
    ),
    (
        "torch 2.5 with an unpublished CUDA",
        dict(framework="torch", framework_version="2.5.1", gpu=True, cuda="12.6"),
        ["CUDA 12.6", "11.8, 12.1, 12.4"],
        ['"12.4"'],
    ),
    (
        "torch 2.5 with CUDA 12.2 picks the closer 12.1",
        dict(framework="torch", framework_version="2.5.1", gpu=True, cuda="12.2"),
        ["CUDA 12.2"],
        ['"12.1"'],
    ),
    ("scikit-learn on gpu", dict(framework="scikit-learn", gpu=True), ["scikit-learn", "no CUDA build"], ["gpu.enabled: false"]),
    ("lightgbm on gpu", dict(framework="lightgbm", framework_version="4.5.0", gpu=True), ["no CUDA build"], ["gpu.enabled: false"]),
    ("gpu without framework or cuda", dict(gpu=True), ["gpu.enabled"], ["gpu.cuda"]),
    ("scikit-learn 1.2.2 on 3.12 (no cp312 wheel)", dict(python="3.12", framework="scikit-learn", framework_version="==1.2.2"),
     ["1.2.2", "no wheels for Python 3.12", "3.8 to 3.11"], ['python: "3.11"', "scikit-learn>=1.3.2"]),
    ("scikit-learn older than the older table", dict(python="3.11", framework="scikit-learn", framework_version="==0.19.1"),
     ["0.19.1", "no wheels for Python 3.11"], ["scikit-learn>=1.1.3"]),
    ("old torch on gpu without gpu.cuda", dict(framework="torch", framework_version="1.13.1", gpu=True),
     ["CUDA builds", "torch 1.13.1"], ["gpu.cuda"]),
    ("not a version", dict(framework="torch", framework_version="latest-ish"), ["'latest-ish'", "not a version"], ["2.3.1"]),
    ("unknown framework", dict(framework="caffe"), ["'caffe'"], ["torch", "scikit-learn"]),
]


@pytest.mark.parametrize(("case", "kwargs", "problem_words", "fix_words"), IMPOSSIBLE, ids=[c[0] for c in IMPOSSIBLE])
def test_impossible_combination_names_the_nearest_valid_choice(
    case: str, kwargs: dict[str, Any], problem_words: list[str], fix_words: list[str]
) -> None:
    error = _compat_error(**kwargs)

    for word in problem_words:
        assert word in error.problem, (word, error.problem)
    for word in fix_words:
        assert word in error.fix, (word, error.fix)


def test_torch_cpu_target_uses_the_cpu_wheel_index_with_a_reason() -> None:
    res = _resolve(framework="torch", framework_version="2.5.1")

    assert res.target == "cpu"
    assert res.extra_index_urls == (CPU_TORCH_INDEX,)
    wheels = [c for c in res.choices if c.what == "wheels"]
    assert wheels and "CPU" in wheels[0].why


def test_torch_gpu_uses_the_newest_published_cuda_runtime_image() -> None:
    res = _resolve(framework="torch", framework_version="2.5.1", gpu=True)

    assert res.target == "gpu"
    assert res.cuda == "12.4"
    assert res.base_final == "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
    assert res.base_builder == res.base_final
    assert res.extra_index_urls == ("https://download.pytorch.org/whl/cu124",)
    assert "devel" not in res.base_final


def test_gpu_devel_image_only_when_asked_for() -> None:
    res = _resolve(framework="torch", framework_version="2.5.1", gpu=True, devel=True)

    assert res.base_final == "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"


def test_asked_for_cuda_is_used_when_published() -> None:
    res = _resolve(framework="torch", framework_version="2.5.1", gpu=True, cuda="11.8")

    assert res.cuda == "11.8"
    assert res.base_final == "nvidia/cuda:11.8.0-cudnn-runtime-ubuntu22.04"
    assert res.extra_index_urls == ("https://download.pytorch.org/whl/cu118",)
    cuda_choice = next(c for c in res.choices if c.what == "cuda")
    assert "gpu.cuda" in cuda_choice.why


def test_gpu_without_framework_uses_the_asked_for_cuda_and_says_why() -> None:
    res = _resolve(gpu=True, cuda="12.4")

    cuda_choice = next(c for c in res.choices if c.what == "cuda")
    assert cuda_choice.value == "12.4"
    assert "None" not in cuda_choice.why
    assert res.base_final == "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"


@pytest.mark.parametrize(
    ("framework", "pypi", "cpu_package"),
    [("xgboost", "xgboost", "xgboost-cpu"), ("tensorflow", "tensorflow", "tensorflow-cpu")],
)
def test_cpu_target_never_swaps_in_a_package_that_changes_the_distribution_name(
    framework: str, pypi: str, cpu_package: str
) -> None:
    res = _resolve(framework=framework)

    # xgboost-cpu installs as "xgboost-cpu": importlib.metadata.version("xgboost") would fail.
    assert res.package_renames == ()
    wheels = next(c for c in res.choices if c.what == "wheels")
    assert wheels.value == pypi
    assert cpu_package in wheels.why and f"importlib.metadata.version('{pypi}')" in wheels.why


@pytest.mark.parametrize(
    ("framework", "spec", "series", "release"),
    [
        ("scikit-learn", ">0.19.1", "1.9", "1.9.1"),  # a lower bound is a range, not a pin
        ("scikit-learn", ">=1.0", "1.9", "1.9.1"),
        ("scikit-learn", "~=1.2", "1.9", "1.9.1"),
        ("scikit-learn", ">=1.5", "1.9", "1.9.1"),  # plan shows what gets installed, not 1.5
        ("scikit-learn", ">=1.4,<1.6", "1.5", "1.5.2"),
        ("scikit-learn", "==1.5.1", "1.5", "1.5.1"),
        ("scikit-learn", "==1.5.*", "1.5", "1.5.2"),
        ("scikit-learn", "1.6", "1.6", "1.6.1"),  # a bare series in dockyard.yaml pins the series
        ("xgboost", "<3", "2.1", "2.1.4"),
        ("keras", ">=3.0", "3", "3.15.1"),
    ],
)
def test_a_specifier_resolves_to_the_newest_known_release_it_admits(
    framework: str, spec: str, series: str, release: str
) -> None:
    res = _resolve(framework=framework, framework_version=spec)

    assert (res.framework_series, res.framework_release) == (series, release)
    assert _choice(res, "framework") == f"{framework} {release}"


def test_a_range_picks_among_releases_that_support_the_python() -> None:
    # tensorflow 2.21 supports 3.13, 2.19 does not: the installer skips 2.19 only when 2.21 is allowed.
    assert _resolve(python="3.13", framework="tensorflow", framework_version=">=2.15").framework_release == "2.21.0"
    with pytest.raises(CompatError) as info:
        _resolve(python="3.13", framework="tensorflow", framework_version=">=2.15,<2.20")
    assert "3.13" in info.value.problem and "2.19" in info.value.problem


def test_a_range_that_admits_only_old_releases_without_wheels_for_the_python_is_refused() -> None:
    with pytest.raises(CompatError) as info:
        _resolve(framework="scikit-learn", framework_version="<1.0")
    # uv would take 0.24.2, the newest release below 1.0: it has no wheel for 3.11
    assert "scikit-learn<1.0 installs scikit-learn 0.24.2" in info.value.problem
    assert "no wheels for Python 3.11" in info.value.problem
    assert "scikit-learn>=1.1.3" in info.value.fix


@pytest.mark.parametrize(("framework", "pin", "python", "series_note"), [
    ("scikit-learn", "==1.2.2", "3.10", "the 1.2 series published wheels for Python 3.8 to 3.11"),
    ("scikit-learn", "==1.2.2", "3.11", "the 1.2 series published wheels for Python 3.8 to 3.11"),
    ("torch", "==1.13.1", "3.10", "dockyard has no data on it"),
])
def test_an_old_pin_dockyard_has_no_data_against_is_a_warning_and_installs_as_pinned(
        framework: str, pin: str, python: str, series_note: str) -> None:
    res = _resolve(python=python, framework=framework, framework_version=pin)
    release = pin.removeprefix("==")
    assert (res.framework_series, res.framework_release) == (None, release)
    assert _choice(res, "framework") == f"{framework} {release}"
    [warning] = res.warnings
    assert f"{framework}{pin} is older than dockyard's compatibility data" in warning
    assert f"cannot vouch that it works on Python {python}" in warning and series_note in warning


def test_an_old_torch_on_gpu_takes_the_cuda_dockyard_yaml_names() -> None:
    res = _resolve(framework="torch", framework_version="1.13.1", gpu=True, cuda="11.8")
    assert res.cuda == "11.8" and res.warnings


def test_gpu_target_keeps_the_full_xgboost_package() -> None:
    res = _resolve(framework="xgboost", framework_version="2.1.3", gpu=True)

    assert res.package_renames == ()
    assert res.cuda == "12.4"


def test_onnx_gpu_target_swaps_in_onnxruntime_gpu() -> None:
    res = _resolve(framework="onnx", gpu=True)

    assert ("onnxruntime", "onnxruntime-gpu") in res.package_renames


def test_local_bases_are_preferred_when_present() -> None:
    res = _resolve(local_bases=frozenset({LOCAL_SLIM, LOCAL_BUILD}))

    assert (res.base_final, res.base_builder) == (LOCAL_SLIM, LOCAL_BUILD)
    assert "bootstrap" in next(c.why for c in res.choices if c.what == "base")


def test_local_slim_base_alone_builds_on_itself() -> None:
    res = _resolve(local_bases=frozenset({LOCAL_SLIM}))

    assert (res.base_final, res.base_builder) == (LOCAL_SLIM, LOCAL_SLIM)


def test_official_python_images_without_local_bases() -> None:
    res = _resolve(local_bases=frozenset({"dockyard/python:3.12-slim"}))  # other Python: not usable

    assert (res.base_final, res.base_builder) == ("python:3.11-slim", "python:3.11")


@pytest.mark.parametrize("gpu", [False, True])
def test_base_image_override_wins(gpu: bool) -> None:
    res = _resolve(
        framework="torch", framework_version="2.5.1", gpu=gpu, base_image="registry.local/ml/base:7",
        local_bases=frozenset({LOCAL_SLIM, LOCAL_BUILD}),
    )

    assert res.base_final == res.base_builder == "registry.local/ml/base:7"
    bases = [c for c in res.choices if c.what in ("base", "builder")]
    assert [(c.value, "override" in c.why) for c in bases] == [("registry.local/ml/base:7", True)]


def test_newer_than_known_version_uses_the_newest_data_with_a_reason() -> None:
    newest = max(compat_data()["frameworks"]["torch"]["versions"], key=lambda v: tuple(map(int, v.split("."))))

    res = _resolve(framework="torch", framework_version="9.1.0")

    assert res.framework_series == newest
    why = next(c.why for c in res.choices if c.what == "framework")
    assert "newer" in why and newest in why


def test_unpinned_framework_assumes_the_newest_series_and_says_so() -> None:
    res = _resolve(framework="scikit-learn")

    why = next(c.why for c in res.choices if c.what == "framework")
    assert "no scikit-learn version pinned" in why


def test_pinned_patch_release_maps_to_its_series() -> None:
    res = _resolve(framework="torch", framework_version="2.10.1")

    assert res.framework_series == "2.10"  # not 2.1: series match on release parts, not text prefix


def test_framework_system_packages_and_warm_imports_come_from_the_data() -> None:
    res = _resolve(framework="lightgbm")

    assert res.system_packages == ("libgomp1",)
    assert res.warm_imports == ("lightgbm",)


RESOLVABLE = [
    dict(),
    dict(framework="scikit-learn", framework_version="1.5.2"),
    dict(framework="torch", framework_version="2.5.1"),
    dict(framework="torch", framework_version="2.5.1", gpu=True),
    dict(framework="xgboost", gpu=True),
    dict(local_bases=frozenset({LOCAL_SLIM, LOCAL_BUILD})),
    dict(base_image="example.org/base:1"),
    dict(python="3.13", framework="tensorflow"),
]


@pytest.mark.parametrize("kwargs", RESOLVABLE, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "plain")
def test_every_resolution_explains_python_and_base(kwargs: dict[str, Any]) -> None:
    res = _resolve(**kwargs)

    whats = {c.what for c in res.choices}
    assert {"python", "base"} <= whats
    for choice in res.choices:
        assert choice.why.strip(), f"choice {choice.what} has no reason"
        assert "None" not in choice.why, choice
    assert res.uv_version == compat_data()["uv_version"]


def test_every_framework_series_has_valid_python_and_cuda_data() -> None:
    # Data, not code: a bad edit to frameworks.json should fail here, not at build time.
    data = compat_data()
    for name, fw in data["frameworks"].items():
        assert fw["versions"], name
        for series, spec in fw["versions"].items():
            lo, hi = spec["python"]
            assert tuple(map(int, lo.split("."))) <= tuple(map(int, hi.split("."))), (name, series)
            for cuda in spec["cuda"]:
                assert cuda in data["cuda_images"], f"{name} {series}: CUDA {cuda} has no image in cuda_images"


@pytest.mark.parametrize(("python", "release"), [("3.10", "Ubuntu jammy"), ("3.11", "Debian bookworm"),
                                                 ("3.12", "Ubuntu noble"), ("3.13", "Debian trixie")])
def test_without_a_local_base_plan_announces_the_release_the_build_would_bootstrap(python: str, release: str) -> None:
    why = next(c.why for c in _resolve(python=python).choices if c.what == "base")
    assert f"the build makes a local one from {release} packages first" in why
    assert f"`dockyard base bootstrap --python {python}`" in why


def test_the_nearest_python_is_one_rule_and_a_tie_goes_to_the_newer() -> None:
    from dockyard.compat.resolver import nearest_python

    supported = compat_data()["python"]["supported"]
    assert nearest_python("3.6", supported) == supported[0] and nearest_python("3.19", supported) == supported[-1]
    assert nearest_python("3.11", ["3.10", "3.12"]) == "3.12" == nearest_python("3.11", ("3.12", "3.10"))
    assert nearest_python("3.11", ["3.9", "3.12"]) == "3.12"
