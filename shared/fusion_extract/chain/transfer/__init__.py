"""Landing an output file: fetch, unpack, promote, finish."""
