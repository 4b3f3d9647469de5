"""How each platform runs a container image of a function: base, folder, command, port.

`bertless package CLOUD BUNDLE --format image` follows these conventions; each is read from the
platform's own documentation, with the date read, as every other platform fact here.

- Lambda: AWS's Python base image runs the Lambda runtime interface client, which imports the
  handler named by CMD from LAMBDA_TASK_ROOT (/var/task); requests come through the Runtime API,
  not a port.
- Cloud Run: any image that listens for HTTP on 0.0.0.0 at the port in $PORT (8080 unless told).
  Google's own samples start from Docker Hub's `python:X.Y-slim`; the function is served by
  functions-framework, the server Cloud Run functions run, calling the same `main.handle`.
- Azure Functions: Microsoft's Functions base image runs the Functions host on port 80
  (ASP.NET Core, `ASPNETCORE_URLS=http://+:80`), which loads the app from AzureWebJobsScriptRoot
  (/home/site/wwwroot); the base's own entrypoint stays, so no command is set. The Python worker
  puts the app's `.python_packages/lib/site-packages` on `sys.path`, as for a zip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bertless.platforms.records import READ_ON_WARM, Sourced


@dataclass(frozen=True, kw_only=True)
class ImageConvention(Sourced):
    """What a platform's container must look like for the function inside to be served."""

    base: str  # the default base image; {python} is the Python version, e.g. 3.12
    app_root: str  # where the function's files go in the image
    cmd: tuple[str, ...] | None  # None: the base's own entrypoint and command serve the app
    env: dict[str, str] = field(default_factory=dict)
    port_env: str | None = None  # how the platform tells the server its port; None: no port
    port: int | None = None  # the port served when nothing says otherwise

    def listen_env(self, port: int) -> dict[str, str]:
        """The variables that make the image's server listen on 127.0.0.1:`port`, as the
        platform would make it listen on its own port (used by the proof)."""
        if self.port_env == "PORT":
            return {"PORT": str(port), "HOST": "127.0.0.1"}  # HOST: functions-framework's bind
        if self.port_env == "ASPNETCORE_URLS":
            return {"ASPNETCORE_URLS": f"http://127.0.0.1:{port}"}
        raise ValueError(f"{self.port_env!r} is no port variable this module knows")


AWS_IMAGE = ImageConvention(
    base="public.ecr.aws/lambda/python:{python}",
    app_root="/var/task",
    cmd=("lambda_function.handler",),
    env={"LAMBDA_TASK_ROOT": "/var/task"},
    source="https://docs.aws.amazon.com/lambda/latest/dg/python-image.html",
    read_on=READ_ON_WARM,
)

GCP_IMAGE = ImageConvention(
    base="docker.io/library/python:{python}-slim",
    app_root="/workspace",
    cmd=("python", "-m", "functions_framework", "--target=handle", "--source=main.py"),
    env={"PYTHONPATH": "/workspace", "PYTHONUNBUFFERED": "1"},
    port_env="PORT",
    port=8080,
    source="https://cloud.google.com/run/docs/container-contract",
    read_on=READ_ON_WARM,
    note=(
        "base: Google's Cloud Run Python sample, https://github.com/GoogleCloudPlatform/"
        "python-docs-samples/blob/main/run/helloworld/Dockerfile; functions-framework reads "
        "PORT: https://github.com/GoogleCloudPlatform/functions-framework-python"
    ),
)

AZURE_IMAGE = ImageConvention(
    base="mcr.microsoft.com/azure-functions/python:4-python{python}",
    app_root="/home/site/wwwroot",
    cmd=None,
    env={
        "AzureWebJobsScriptRoot": "/home/site/wwwroot",
        "AzureFunctionsJobHost__Logging__Console__IsEnabled": "true",
    },
    port_env="ASPNETCORE_URLS",
    port=80,
    source="https://learn.microsoft.com/en-us/azure/azure-functions/functions-how-to-custom-container",
    read_on=READ_ON_WARM,
    note=(
        "port 80 and ASPNETCORE_URLS=http://+:80: the host's image, https://github.com/Azure/"
        "azure-functions-host/blob/dev/Dockerfile; site-packages path: the Python worker's "
        "CUSTOMER_PACKAGES_PATH"
    ),
)

IMAGES = {"aws": AWS_IMAGE, "gcp": GCP_IMAGE, "azure": AZURE_IMAGE}
