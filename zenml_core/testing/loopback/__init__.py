"""The loopback cloud: emulated cloud services on 127.0.0.1 that every plugin's tests use.

- ``gcs``: Google Cloud Storage (gcp-storage-emulator).
- ``kubernetes``: a Kubernetes API (kmock) with a job controller that runs each Job's pod in
  a real container (or as a subprocess where there is no Docker engine), and fault injection.
- ``docker_engine``: our own dockerd, the base image built offline, a registry on loopback.

Install with ``pip install 'zenml-core[loopback]'``. Nothing here reaches beyond 127.0.0.1.
"""
