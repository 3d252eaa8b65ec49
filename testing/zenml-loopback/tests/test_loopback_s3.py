"""The loopback S3 (moto's server) through boto3, as an s3:// backend's tests will use it."""

from __future__ import annotations

import pytest

from zenml_loopback.s3 import S3Emulator


@pytest.fixture(scope="module")
def s3():
    with S3Emulator() as emulator:
        yield emulator


def test_objects_round_trip(s3):
    client = s3.client()
    client.create_bucket(Bucket="artifacts")
    client.put_object(Bucket="artifacts", Key="runs/1/model.bin", Body=b"\x00weights")
    client.put_object(Bucket="artifacts", Key="runs/1/.zenml-artifact", Body=b"sha256:abc")
    listed = client.list_objects_v2(Bucket="artifacts", Prefix="runs/1/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "runs/1/.zenml-artifact",
        "runs/1/model.bin",
    ]
    assert (
        client.get_object(Bucket="artifacts", Key="runs/1/model.bin")["Body"].read()
        == b"\x00weights"
    )


def test_errors_are_the_real_ones(s3):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        s3.client().get_object(Bucket="no-such-bucket", Key="x")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_the_environment_names_the_endpoint_and_no_real_account(s3):
    env = s3.environment()
    assert env["AWS_ENDPOINT_URL"] == s3.url and s3.url.startswith("http://127.0.0.1:")
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
