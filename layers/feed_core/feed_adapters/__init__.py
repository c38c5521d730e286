"""Adapters: one package per store, each implementing ports of the domain (`newsfeed.ports`) and
translating its driver's connection and timeout errors into the domain's `StoreUnavailable`."""
