# syntax=docker/dockerfile:1
# loomguard: a static binary on a distroless base, run as a numeric non-root user, fit for
# readOnlyRootFilesystem (it writes nothing but to the mounted cert and config directories).
# The image holds the full build of cmd/loomguard (no loomguard_cli tag): serve is in it.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/loomguard ./cmd/loomguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/loomguard /loomguard
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/loomguard"]
CMD ["serve"]
