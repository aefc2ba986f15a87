"""`ganzoo classifier`: train and cache the classifier behind the class metrics."""
import hydra

from ..config import load_classifier_config
from .tasks import guarded


def _classifier(c):
    from ..use import classifier_command
    classifier_command(c)


main = hydra.main(config_path="pkg://ganzoo.conf", config_name="classifier", version_base="1.3")(
    guarded(load_classifier_config, _classifier))

if __name__ == "__main__":
    main()
