"""``python -m lightning_rnn_reg``: the same command as ``lightning-rnn-reg``."""

from lightning_rnn_reg.cli import main

if __name__ == "__main__":
    main()
