// Switchboard admin: small progressive enhancements. Every page works without this file.
// Copy buttons: <button data-copy="ID" hidden> copies the text of #ID; shown only when the
// clipboard API is there (it needs a secure context).
document.addEventListener('DOMContentLoaded', function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source) return;
      navigator.clipboard.writeText(source.textContent).then(function () {
        var label = button.textContent;
        button.textContent = 'Copied';
        setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  });
});
