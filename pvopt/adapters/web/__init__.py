"""The local web page: Starlette on uvicorn in its own thread and event loop, behind `Site`."""

from pvopt.adapters.web.port import Site
from pvopt.adapters.web.server import WebServer

__all__ = ["Site", "WebServer"]
