"""A local S3 server for the store's tests: moto in server mode, in its own process.

Its own process, because moto's ``ThreadedMotoServer`` in the test process deadlocks
with ArcticDB: ArcticDB's ``Arctic(...)``/``list_libraries`` holds the GIL while it
waits for the HTTP reply, so the server thread can never answer (seen as a hang in
``arcticdb/arctic.py list_libraries`` with the moto thread parked in ``select``).
ArcticDB does not create buckets: :meth:`MotoS3.new_bucket` makes one with boto3.
Stopping the process (:meth:`MotoS3.pause`) is an S3 outage: calls hang, nothing is lost.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

ACCESS, SECRET = "test-access-key", "test-secret-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoS3:
    """A moto S3 server on a free loopback port; :meth:`stop` ends it."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        # The AWS SDK would otherwise probe the EC2 metadata service.
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((self.host, self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start on port {self.port}") from None
                time.sleep(0.05)

    def new_bucket(self) -> str:
        """A fresh bucket, as an ArcticDB URI."""
        import boto3

        bucket = f"store-{uuid.uuid4().hex[:12]}"
        client: Any = boto3.client(
            "s3",
            endpoint_url=f"http://{self.host}:{self.port}",
            aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=bucket)
        return (
            f"s3://{self.host}:{bucket}?port={self.port}&access={ACCESS}&secret={SECRET}"
            "&region=us-east-1"
        )

    def pause(self) -> None:
        """An outage: the server stops answering (connections hang) until :meth:`resume`."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
