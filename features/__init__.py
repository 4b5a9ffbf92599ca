"""The product's core library: contract, encoders, cache, analog index, feature assembly."""
