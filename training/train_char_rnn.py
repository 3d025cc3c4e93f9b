"""The earlier name of ``training.train_shakespeare``, kept so that the commands recorded by earlier
runs (their training.json) still run."""

from training.train_shakespeare import main

if __name__ == "__main__":
    main()
