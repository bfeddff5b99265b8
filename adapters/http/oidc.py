"""OpenID Connect sign-in: the authorization-code flow with PKCE against the organisation's provider."""

from __future__ import annotations

import functools
import secrets
import time
import warnings
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client
    from joserfc.jwk import KeySet

DISCOVERY_SECONDS = 3600.0
"""How long the provider's metadata and keys are kept before they are fetched again."""


@functools.cache
def _oauth2_client_class() -> type[AsyncOAuth2Client]:
    """authlib, loaded only where a provider is configured: it costs every other start a fifth of a second."""
    with warnings.catch_warnings():
        # authlib 1.9 asks for the httpx2 package on import; its client works with httpx as it is.
        # authlib's own module sets its warnings to "always" when imported: set ours after it.
        from authlib import deprecate

        warnings.simplefilter("ignore", deprecate.AuthlibDeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client


class OidcError(Exception):
    """The provider could not be reached, or what came back is not a valid sign-in."""


class OidcClient:
    """A confidential client of one provider; the browser carries each sign-in's secrets, signed."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched = 0.0

    def _client(self) -> AsyncOAuth2Client:
        return _oauth2_client_class()(
            self.client_id,
            self.client_secret,
            scope="openid profile email",
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=10,
        )

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._fetched > DISCOVERY_SECONDS:
            try:
                async with httpx.AsyncClient(timeout=10) as http:
                    found = (await http.get(f"{self.issuer}/.well-known/openid-configuration")).json()
                    keys = (await http.get(found["jwks_uri"])).json()
            except (httpx.HTTPError, ValueError, KeyError) as error:
                raise OidcError(f"the provider's metadata cannot be read: {error}") from None
            from joserfc.jwk import KeySet

            self._metadata, self._keys = found, KeySet.import_key_set(keys)
            self._fetched = time.monotonic()
        return self._metadata

    async def authorization_url(self) -> tuple[str, dict[str, str]]:
        """Where to send the browser, and the trip's state, nonce and PKCE verifier to keep meanwhile."""
        metadata = await self.metadata()
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        async with self._client() as client:
            url, state = client.create_authorization_url(
                metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
            )
        return url, {"state": state, "nonce": nonce, "verifier": verifier}

    async def person(self, trip: dict[str, str], answer: dict[str, str]) -> str:
        """The provider's subject of the person who signed in, once the code and its ID token check out."""
        if "error" in answer:
            raise OidcError(f"the provider refused: {answer['error']}")
        if not secrets.compare_digest(answer.get("state", ""), trip.get("state", "")):
            raise OidcError("the answer's state is not this trip's")
        code = answer.get("code")
        if not code:
            raise OidcError("the provider sent no code")
        metadata = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=trip["verifier"], state=trip["state"]
                )
        except Exception as error:
            raise OidcError(f"the code could not be exchanged: {type(error).__name__}: {error}") from None
        id_token = token.get("id_token")
        if not id_token:
            raise OidcError("the provider sent no ID token")
        return self._subject(str(id_token), trip["nonce"])

    def _subject(self, id_token: str, nonce: str) -> str:
        from joserfc import jwt
        from joserfc.errors import JoseError

        assert self._keys is not None
        try:
            decoded = jwt.decode(id_token, self._keys)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self._metadata_issuer()},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as error:
            raise OidcError(f"the ID token is not valid: {error}") from None
        return str(decoded.claims["sub"])

    def _metadata_issuer(self) -> str:
        assert self._metadata is not None
        return str(self._metadata.get("issuer", self.issuer))
