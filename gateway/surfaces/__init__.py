"""One module per HTTP surface (seed document) or resource group; each exposes `router`."""
