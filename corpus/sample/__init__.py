"""An offline sample corpus: three small Go repositories whose history is defined in code."""
