"""`ganzoo eval`: score a saved checkpoint and append the scores to its run's metrics.jsonl."""
import hydra

from ..config import EvalConfig, load_simple
from .tasks import guarded


def _eval(c):
    from ..use import eval_command
    eval_command(c)


main = hydra.main(config_path="pkg://ganzoo.conf", config_name="eval", version_base="1.3")(
    guarded(lambda raw: load_simple(EvalConfig, raw), _eval))

if __name__ == "__main__":
    main()
