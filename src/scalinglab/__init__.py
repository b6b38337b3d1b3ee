"""scalinglab: train model ladders, fit scaling laws, and plan compute."""

__version__ = "0.1.0"
