"""Who the API server takes this client for: the user name an approval must carry."""

from typing import Any

from kubernetes import client as k8s

from cairn.kube import client


def username() -> str:
    """The requesting user's name as the API server sees it (request.userInfo.username), from a
    SelfSubjectReview (authentication.k8s.io/v1): whatever the kubeconfig authenticates with,
    client certificate, token or an exec plugin, the answer is the server's."""
    review: Any = k8s.AuthenticationV1Api(client.api_client()).create_self_subject_review(
        k8s.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    )
    return str(review.status.user_info.username)
