"""`ganzoo classifier`: train and cache the classifier behind the class metrics."""
import hydra

from .. import config  # noqa: F401  registers the schemas with Hydra's ConfigStore
from .tasks import classifier_task

main = hydra.main(config_path="pkg://ganzoo.conf", config_name="classifier", version_base="1.3")(classifier_task)

if __name__ == "__main__":
    main()
