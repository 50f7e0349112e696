"""moto server, as `moto_server` runs it, with one fix for fmn's local runs.

moto's `/moto-api/data.json` (where fmn reads the emails SES accepted) reads every
attribute of every model; on a Lambda function that includes `docker_client`, which raises
DockerException when no Docker engine runs (as here) and turns the whole answer into a 500.
The fix makes that one failure the TypeError that data.json already skips. Nothing else
changes: no emulator behaviour fmn relies on is touched.
"""

import sys

from moto.server import main
from moto.utilities import docker_utilities

_docker_client = docker_utilities.DockerModel.docker_client


def _docker_client_or_type_error(self):
    try:
        return _docker_client.fget(self)
    except Exception as e:  # docker.errors.DockerException and friends
        raise TypeError(f"no Docker engine: {e}") from e


docker_utilities.DockerModel.docker_client = property(_docker_client_or_type_error)

if __name__ == "__main__":
    sys.exit(main())
