"""The loopback cloud: emulated cloud services on 127.0.0.1 that every plugin's tests use.

- ``gcs``: Google Cloud Storage (gcp-storage-emulator); ``s3``: S3 (moto's server).
- ``kubernetes``: a Kubernetes API (kmock) with a job controller that runs each Job's pod.
- ``google``: Compute Engine and Vertex AI REST endpoints that run a VM's declared container
  and a custom job's container.
- ``workloads``: how those run: a container on a Docker engine, or a subprocess without one.
- ``docker_engine``: our own dockerd, the base image built offline, a registry on loopback.
- ``fixtures``: the pytest fixtures over all of these.

Faults on demand (a pod OOM-killed or evicted, a VM preempted, a job cancelled, an API
answering 429, 500 or 403) are methods of the emulators. Install with
``pip install zenml-loopback`` (S3 also needs its ``[aws]`` extra); its fixtures are then in
every pytest run. Nothing here reaches beyond 127.0.0.1.
"""
