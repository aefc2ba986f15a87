"""`ganzoo eval`: score a saved checkpoint and append the scores to its run's metrics.jsonl."""
import hydra

from .. import config  # noqa: F401  registers the schemas with Hydra's ConfigStore
from .tasks import eval_task

main = hydra.main(config_path="pkg://ganzoo.conf", config_name="eval", version_base="1.3")(eval_task)

if __name__ == "__main__":
    main()
