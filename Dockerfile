# One image for web, worker and gpu-worker. The GPU image swaps the CPU torch wheel for the CUDA build
# of the same version (TORCH_INDEX_URL), everything else is identical.
FROM python:3.11-slim-bookworm
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY studyserver ./studyserver
COPY generator ./generator
COPY analysis ./analysis
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0 \
 && pip install --no-cache-dir .
COPY manage.py ./
COPY templates ./templates
# Static files outside var/ (the owner-only folder of personal data), readable by the server's user.
ENV STATIC_ROOT=/app/static
RUN SECRET_KEY=build DATABASE_URL=sqlite:////tmp/build.sqlite3 MEDIA_ROOT=/tmp/media \
    python manage.py collectstatic --noinput
USER nobody
EXPOSE 8000
CMD ["gunicorn", "studyserver.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "60"]
