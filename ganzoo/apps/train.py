"""`ganzoo train`: one training job, or one per combination with -m."""
import hydra

from .. import config  # noqa: F401  registers the schemas with Hydra's ConfigStore
from .tasks import train_task

main = hydra.main(config_path="pkg://ganzoo.conf", config_name="train", version_base="1.3")(train_task)

if __name__ == "__main__":
    main()
