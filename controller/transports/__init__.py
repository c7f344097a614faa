"""Byte transports to a cushion, found by name through a registry that entry points extend."""

from controller.transports.base import Endpoint, Transport, open_transport, parse_endpoint

__all__ = ["Endpoint", "Transport", "open_transport", "parse_endpoint"]
