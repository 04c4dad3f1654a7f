"""A project's own Dockerfile is built as it is: when it cannot be, the error says why in its terms
instead of "fix the failing step ... --no-cache" (real-world corpus: abhishek-kumar/ml-edge ships a
serving Dockerfile FROM python:3.10.11 and no train stage). Recorded from `docker build --progress
plain` (client 20.10, BuildKit) on a host with no registry access."""

from __future__ import annotations

from dockyard.engine import build_failure

PULL_LOG = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:5538e507d3052cf35cee63bbdae806cf5244bdc23fc29e276463955379c5e467
#1 transferring dockerfile: 94B 0.0s done
#1 DONE 0.0s

#2 [internal] load .dockerignore
#2 sha256:35da46c4debe9412c71608e7f99434856172f622293b3911775a5125722cda50
#2 transferring context: 2B done
#2 DONE 0.0s

#3 [internal] load metadata for docker.io/library/python:3.10.11
#3 sha256:c22c4c6f423cd84d7e7ce3d665ee6a26c3796cda4409b0edae80c7d82fa9485e
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.10.11": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host
------
 > [internal] load metadata for docker.io/library/python:3.10.11:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.10.11": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host
"""

NO_STAGE_LOG = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:d615eb1a961c221b3ab6ad1898d2d278622ed81de887c690871f0d7f2ea285b8
#1 transferring dockerfile: 31B done
#1 DONE 0.0s

#2 [internal] load .dockerignore
#2 sha256:992c44fc2f63cd6c95c514fdd8bc1ac597177d8514e8090ee6d751fae1974be2
#2 transferring context: 2B done
#2 DONE 0.0s
failed to solve with frontend dockerfile.v0: failed to create LLB definition: target stage train could not be found
"""


def test_a_from_image_the_engine_cannot_pull_is_named_with_the_cause() -> None:
    error = build_failure(PULL_LOG.splitlines())

    assert error.exit_code == 3
    assert error.problem.startswith("the engine cannot pull docker.io/library/python:3.10.11 (no registry access?)")
    assert "no such host" in error.problem
    assert "docker load` docker.io/library/python:3.10.11" in error.fix and "access to docker.io" in error.fix
    assert "move that Dockerfile aside" in error.fix and "--no-cache" not in error.fix
    assert error.step == "[internal] load metadata for docker.io/library/python:3.10.11"


def test_a_missing_target_stage_says_which_and_how_to_add_it() -> None:
    error = build_failure(NO_STAGE_LOG.splitlines())

    assert error.problem == "the Dockerfile has no stage named 'train' (no `FROM ... AS train`)"
    assert "add a `train` stage" in error.fix and "move that Dockerfile aside" in error.fix


def test_a_failing_run_step_is_not_mistaken_for_a_pull() -> None:
    log = ["#3 [internal] load metadata for docker.io/library/python:3.11", "#3 DONE 0.0s",
           "#9 [builder 2/2] RUN pip install nothing-here", "#9 1.0 ERROR: No matching distribution found",
           "#9 ERROR: executor failed running [/bin/sh -c pip install nothing-here]: exit code: 1"]

    error = build_failure(log)

    assert error.problem.startswith("build failed at step [builder 2/2] RUN pip install nothing-here")
