"""internalize: value internalization from social reward (Rong & Kleiman-Weiner, 2024) in JAX."""
__version__ = "0.1.0"
